/**
 * Issue 20 item 4: one table of the receiver's contract (signed event accepted, bad signatures
 * 401, schema violations 400, duplicates absorbed, batches answered per event, health, body limit
 * 413, slow body 408, the app's own routes untouched) through every adapter: each row of MOUNTS
 * (test/helpers/mounts.ts) is a real app of its framework on 127.0.0.1.
 */
import { MOUNTS } from '../helpers/mounts.js';
import { describeReceiverContract } from '../helpers/receiver-contract.js';

for (const mount of MOUNTS) describeReceiverContract(mount);

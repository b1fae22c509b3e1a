/**
 * Compiled by scripts/check-package.js against the BUILT package (dist/) with skipLibCheck off
 * and no Koa types loaded: an Express-only user's types must not break.
 */
import express from 'express';
import { createEventBus, eventsMiddleware, type EmitReceipt } from '../../dist/index.js';

const app = express();
app.use(eventsMiddleware());
const bus = createEventBus({ service: 'users' });
app.use(bus.expressMiddleware({ path: '/hooks' }));
const receipt: Promise<EmitReceipt> = bus.emit('user-created', { user_id: 'u1' });
void receipt;

// The test kit's types, from the built package as well.
import { createTestNetwork, recordEmits, signedRequest } from '../../dist/testing/index.js';

const network = createTestNetwork();
const users = network.bus('users').declareEvent('user-created', ['payments']);
const recorder = recordEmits(users);
const count: number = recorder.emitted('user-created').length;
const signed: { headers: Record<string, string>; body: string } = signedRequest('user-created', { user_id: 'u1' }, { secret: network.secret });
const settled: Promise<void> = network.settled();
void count;
void signed;
void settled;

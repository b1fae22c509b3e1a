/**
 * One receiver under load, long enough to profile (the server runs in this process, the load
 * generator in a child):
 *   node --cpu-prof --cpu-prof-dir=.tmp/prof --require tsx/cjs bench/profile-receive.ts [raw|node|express] [seconds]
 */
import { fmt, forkTs } from './lib.js';
import { measureReceiver, type ReceiverKind, startReceivers } from './receive.js';

async function main(): Promise<void> {
  const [kind = 'node', seconds = '8'] = process.argv.slice(2);
  const receivers = await startReceivers();
  const load = forkTs('load.ts');
  const figures = await measureReceiver(load, receivers.urls[kind as ReceiverKind], {
    warmupSeconds: 1,
    seconds: Number(seconds),
    connections: 32,
  });
  console.log(
    `${kind}: ${fmt.int(figures.requestsPerSec)} req/s, ${fmt.us(figures.cpuUs)} server CPU µs/req, ` +
      `${figures.non2xx} non-2xx, ${figures.errors} errors`,
  );
  load.disconnect();
  await receivers.close();
}

void main();

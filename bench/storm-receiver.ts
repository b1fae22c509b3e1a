/**
 * The storm's live target in its own process: the library's receiver (`nodeHandler`: signature,
 * schema, dedupe, a handler that counts) on a raw node:http server. Sends `{ url }` once
 * listening; answers `'count'` with `{ count }` and `'times'` with `{ times }`: handled events
 * per 10 ms, as `[ms since epoch, count]` pairs, so that the sender can cut the storm's window
 * from the receiver's clock whatever its own event loop was doing.
 */
import http from 'node:http';
import { createEventBus } from '../src/index.js';
import { discardLogger, EVENT_TYPE, listen, SCHEMA, SECRET } from './lib.js';

const BUCKET_MS = 10;
const buckets = new Map<number, number>();
let count = 0;

const bus = createEventBus({ service: 'payments', secret: SECRET, logger: discardLogger('warn') });
bus.subscribeTo(
  EVENT_TYPE,
  async () => {
    count += 1;
    const at = Math.floor(Date.now() / BUCKET_MS) * BUCKET_MS;
    buckets.set(at, (buckets.get(at) ?? 0) + 1);
  },
  { schema: SCHEMA },
);
const server = http.createServer(bus.nodeHandler());

void listen(server).then((url) => process.send!({ url }));
process.on('message', (message) => {
  if (message === 'count') process.send!({ count });
  if (message === 'times') process.send!({ times: [...buckets] });
});
process.on('disconnect', () => process.exit(0));

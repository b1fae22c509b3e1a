/**
 * A live target in its own process: a raw node:http server answering 204 to everything, counting
 * requests. Sends `{ url }` once listening; answers `'count'` with `{ count }`.
 */
import http from 'node:http';
import { listen } from './lib.js';

let count = 0;
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    count += 1;
    res.writeHead(204);
    res.end();
  });
});

void listen(server).then((url) => process.send!({ url }));
process.on('message', (message) => {
  if (message === 'count') process.send!({ count });
});
process.on('disconnect', () => process.exit(0));

// Issue 16 item 20: a SIGKILL reruns at most the handlers in flight. With the durable SQLite inbox,
// each handler's completion is recorded as it finishes (in groups of at most 16 completions or 10 ms),
// not once per request: a receiver killed while its batches wait for one slow event each must not
// run again the events of those batches that had finished. Counted, not timed.
import { existsSync, readFileSync } from 'node:fs';
import { request } from '../helpers/http-client.js';
import { startFixture } from '../helpers/child.js';
import { signedBatch } from '../helpers/signed-batch.js';
import { newSecret, structuredEvent } from '../helpers/signing.js';
import { tempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait.js';

const BATCHES = 4;
const PER_BATCH = 50;
/** What may run again: the handlers in flight (one held per batch) and one open group of completions. */
const BOUND = BATCHES + 16;

test('SIGKILL mid-batch with a durable SQLite inbox: the restarted receiver reruns at most the handlers in flight plus one group', async () => {
  const dir = tempDir('sigkill-reruns');
  const secret = newSecret();
  const env = { FIXTURE_SECRET: secret, FIXTURE_INBOX: dir.file('inbox.db'), FIXTURE_RUNS: dir.file('runs.txt') };
  const ran = () => (existsSync(env.FIXTURE_RUNS) ? readFileSync(env.FIXTURE_RUNS, 'utf8').split('\n').filter(Boolean) : []);
  // Each batch: one event whose handler never ends in the first run, then 49 that finish at once.
  const batches = Array.from({ length: BATCHES }, () => [
    structuredEvent('user-created', { hold: true }),
    ...Array.from({ length: PER_BATCH - 1 }, (_, n) => structuredEvent('user-created', { n })),
  ]);
  try {
    const first = startFixture('durable-receiver.ts', { ...env, FIXTURE_HOLD: '1' });
    const url = `http://127.0.0.1:${(await first.line(/^port \d+/)).split(' ')[1]}/events`;
    const answers = batches.map((events) => request(url, signedBatch(secret, events)).catch(() => undefined));
    await waitFor(() => ran().length === BATCHES * (PER_BATCH - 1), { timeoutMs: 20_000, what: 'every event but the held ones handled' });
    first.child.kill('SIGKILL');
    expect((await first.result).signal).toBe('SIGKILL');
    await Promise.all(answers); // never answered: the connection died with the process
    const before = ran();

    const second = startFixture('durable-receiver.ts', env);
    try {
      const again = `http://127.0.0.1:${(await second.line(/^port \d+/)).split(' ')[1]}/events`;
      // The sender redelivers each batch, signed afresh.
      const statuses = await Promise.all(batches.map(async (events) => (await request(again, signedBatch(secret, events))).status));
      expect(statuses).toEqual(batches.map(() => 200));
    } finally {
      second.child.kill('SIGKILL');
      await second.result;
    }
    const all = ran();
    expect(new Set(all).size).toBe(BATCHES * PER_BATCH); // every event handled
    const reruns = all.length - new Set(all).size;
    expect(new Set(before).size).toBe(before.length);
    expect(reruns).toBeLessThanOrEqual(BOUND);
  } finally {
    dir.remove();
  }
}, 60_000);

/**
 * `events-library console` as a real child process on a real outbox file: it refuses to start
 * without an operator token, binds 127.0.0.1, and serves the same console API on what the store
 * holds (no figures of a running process), until SIGTERM.
 */
import { SqliteOutbox } from '../../src/backends/sqlite/outbox.js';
import { runScript, startScript } from '../helpers/child.js';
import { request } from '../helpers/http-client.js';
import { kill } from '../helpers/outbox-contract.js';
import { tempDir, type TempDir } from '../helpers/temp-dir.js';

let dir: TempDir;
let path: string;

beforeAll(async () => {
  dir = tempDir('console-cli');
  path = dir.file('outbox.db');
  const store = new SqliteOutbox(path);
  const now = Date.now();
  await store.add([1, 2, 3].map((n) => ({
    eventId: `evt-${n}`,
    type: 'user-created',
    source: 'users',
    target: n === 3 ? 'orders' : 'payments',
    body: JSON.stringify({ specversion: '1.0', id: `evt-${n}`, data: { n, email: 'a@example.com' } }),
    createdAt: now,
  })));
  for (const r of await store.claim('payments', now + 1, 10)) await kill(store, { ...r, attempts: 3, lastStatus: 400, lastError: 'HTTP 400' }, 'refused');
  await store.close();
});
afterAll(() => dir.remove());

test('refuses to start without an operator token, saying how to give one', async () => {
  const result = await runScript(['src/cli.ts', 'console', '--outbox', path, '--port', '0']);
  expect(result.code).toBe(2);
  expect(result.stderr).toMatch(/--token .*EVENTS_CONSOLE_TOKEN/);
});

test('serves the console on 127.0.0.1 on what the outbox file holds, until SIGTERM', async () => {
  const running = startScript(['src/cli.ts', 'console', '--outbox', path, '--service', 'users', '--port', '0'], { EVENTS_CONSOLE_TOKEN: 'cli-token', EVENTS_LOG_LEVEL: 'error' });
  try {
    const line = await running.line(/console at http/);
    const url = /(http:\/\/\S+)/.exec(line)![1]!;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/events\/console$/);
    const api = url.replace(/\/console$/, '/console/api');
    const auth = { authorization: 'Bearer cli-token' };

    expect((await request(url, { method: 'GET' })).headers['content-security-policy']).toContain("default-src 'self'");
    expect((await request(`${api}/overview`, { method: 'GET' })).status).toBe(401);
    const overview = await request(`${api}/overview`, { method: 'GET', headers: auth });
    expect(overview.json).toEqual({
      service: 'users',
      standalone: true,
      consumers: {},
      targets: [
        { name: 'orders', backlog: 1, oldestPendingAgeMs: expect.any(Number), deadLetters: 0 },
        { name: 'payments', backlog: 0, oldestPendingAgeMs: null, deadLetters: 2 },
      ],
    });
    const signIn = await request(`${api}/session`, { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: 'cli-token' }) });
    expect(signIn.status).toBe(200);
    expect(String(signIn.headers['set-cookie'])).toContain('Path=/events/console');

    const page = (await request(`${api}/dead-letters?limit=1`, { method: 'GET', headers: auth })).json as { items: Array<{ id: string; lastStatus: number }>; next: string };
    expect(page.items).toHaveLength(1);
    expect(page.items[0]!.lastStatus).toBe(400);
    const rest = (await request(`${api}/dead-letters?cursor=${encodeURIComponent(page.next)}`, { method: 'GET', headers: auth })).json as { items: unknown[]; next?: string };
    expect(rest.items).toHaveLength(1);
    expect(rest.next).toBeUndefined();
    const replay = await request(`${api}/replay`, { headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ ids: [page.items[0]!.id] }) });
    expect(replay.json).toEqual({ replayed: 1 });
    const after = await request(`${api}/overview`, { method: 'GET', headers: auth });
    expect(after.json).toMatchObject({ targets: [{ name: 'orders' }, { name: 'payments', backlog: 1, deadLetters: 1 }] });
  } finally {
    running.child.kill('SIGTERM');
  }
  const result = await running.result;
  expect(result.code).toBe(0);
}, 30_000);

/**
 * The `events-library` command, run as a real child process (tsx, no build) against a durable
 * outbox that a real bus fills: a receiver on 127.0.0.1:0 refuses with 400, so real dead letters
 * exist; then it is fixed, the CLI replays them, and the running bus delivers them.
 */
import { existsSync } from 'node:fs';
import { createEventBus, type DeadLetter, type EventBus } from '../../src/index.js';
import { runScript } from '../helpers/child.js';
import { quietLogger } from '../helpers/logger.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { tempDir, type TempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
/** How long, and how often, these tests poll. */
const WAIT = { timeoutMs: 15_000, intervalMs: 25 };

/** Runs `events-library …args` (src/cli.ts) with a clean environment (no EVENTS_* but those given). */
const cli = (args: string[], env: Record<string, string> = {}) => runScript(['src/cli.ts', ...args], env);

let dir: TempDir;
let outboxPath: string;
let server: TestServer;
/** What the receiver answers; 400 until it is "fixed". */
let answer = 400;
/** `<target> <event id>` of every request answered 2xx. */
const delivered: string[] = [];
let bus: EventBus;
const eventIds: string[] = [];

beforeAll(async () => {
  dir = tempDir('cli');
  outboxPath = dir.file('outbox.db');
  server = await startServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (answer < 300) delivered.push(`${req.url?.split('/')[1]} ${String(req.headers['webhook-id'])}`);
      res.writeHead(answer, { 'content-type': 'application/json' });
      res.end(answer < 300 ? '' : JSON.stringify({ error: 'invalid_data', message: 'email is not an email' }));
    });
  });
  const base = server.origin;
  bus = createEventBus({
    service: 'users',
    secret: SECRET,
    logger: quietLogger(),
    // A plain sink answering a bare status, not the events middleware: no receipt to require.
    services: { payments: { url: `${base}/payments/events`, receipt: false }, orders: { url: `${base}/orders/events`, receipt: false } },
    outbox: { path: outboxPath, pollIntervalMs: 100 },
  });
  bus.declareEvent('user-created', ['payments', 'orders'], {
    schema: { type: 'object', properties: { email: { type: 'string' } }, required: ['email'] },
  });
  for (const email of ['ada@example.com', 'linus@example.com', 'grace@example.com']) {
    eventIds.push((await bus.emit('user-created', { email })).id);
  }
  await waitFor(async () => (await bus.deadLetters()).length === 6, { ...WAIT, what: '6 dead letters' });
}, 30_000);

afterAll(async () => {
  await bus?.close();
  await server?.close();
  dir.remove();
});

describe('events-library status', () => {
  it('shows pending and dead letters per target', async () => {
    const { code, stdout, stderr } = await cli(['status', '--outbox', outboxPath]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain(`outbox ${outboxPath}`);
    expect(stdout).toMatch(/pending: 0\s+dead letters: 6\s+oldest pending: -/);
    expect(stdout).toMatch(/^orders\s+0\s+3\s+-$/m);
    expect(stdout).toMatch(/^payments\s+0\s+3\s+-$/m);
  }, 30_000);

  it('prints JSON with --json, and reads the path from EVENTS_OUTBOX_PATH', async () => {
    const { code, stdout } = await cli(['status', '--json'], { EVENTS_OUTBOX_PATH: outboxPath });
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({
      path: outboxPath,
      durable: true,
      pending: 0,
      deadLetters: 6,
      targets: { payments: { pending: 0, deadLetters: 3 }, orders: { pending: 0, deadLetters: 3 } },
    });
  }, 30_000);
});

describe('events-library dead-letters', () => {
  it('lists them: id, event id, type, target, status, attempts, dead since, short error', async () => {
    const { code, stdout } = await cli(['dead-letters', '--outbox', outboxPath]);
    expect(code).toBe(0);
    const [header, ...rows] = stdout.trimEnd().split('\n');
    expect(header).toMatch(/^id\s+event id\s+type\s+target\s+status\s+reason\s+attempts\s+dead since\s+last error$/);
    expect(rows).toHaveLength(6);
    for (const id of eventIds) {
      for (const target of ['payments', 'orders']) {
        expect(rows.some((row) => row.includes(id) && row.includes(` ${target} `))).toBe(true);
      }
    }
    for (const row of rows) {
      expect(row).toMatch(
        /user-created\s+\w+\s+400\s+refused\s+1\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(\d+s ago\)\s+HTTP 400 invalid_data: email is not an email$/,
      );
      expect(row.length).toBeLessThan(250);
    }
  }, 30_000);

  it('prints the full records with --json, body included, and filters by --target', async () => {
    const all = JSON.parse((await cli(['dead-letters', '--json', '--outbox', outboxPath])).stdout) as DeadLetter[];
    expect(all).toHaveLength(6);
    const letter = all.find((d) => d.target === 'payments' && d.eventId === eventIds[0])!;
    expect(letter).toMatchObject({ type: 'user-created', source: 'users', status: 400, attempts: 1, reason: 'refused' });
    expect(letter.error).toContain('email is not an email');
    expect(JSON.parse(letter.body)).toMatchObject({ specversion: '1.0', id: eventIds[0], data: { email: 'ada@example.com' } });

    const orders = JSON.parse((await cli(['dead-letters', '--target', 'orders', '--json', '--outbox', outboxPath])).stdout);
    expect((orders as DeadLetter[]).map((d) => d.target)).toEqual(['orders', 'orders', 'orders']);
  }, 30_000);
});

describe('events-library replay', () => {
  it('replays by dead-letter id, by event id, then all; the running service delivers them', async () => {
    answer = 204; // the cause is fixed
    const letters = await bus.deadLetters();
    const first = letters.find((d) => d.target === 'payments' && d.eventId === eventIds[0])!;

    const byId = await cli(['replay', first.id, '--outbox', outboxPath]);
    expect(byId).toMatchObject({ code: 0, stderr: '' });
    expect(byId.stdout).toMatch(/^replayed 1 dead letter;/);
    await waitFor(() => delivered.includes(`payments ${eventIds[0]}`), { ...WAIT, what: 'the replayed delivery' });

    const byEvent = await cli(['replay', '--event', eventIds[1]!, '--target', 'orders', '--outbox', outboxPath]);
    expect(byEvent.stdout).toMatch(/^replayed 1 dead letter;/);
    await waitFor(() => delivered.includes(`orders ${eventIds[1]}`), { ...WAIT, what: 'the replayed event' });

    const none = await cli(['replay', '999999', '--json', '--outbox', outboxPath]);
    expect(none.code).toBe(1);
    expect(JSON.parse(none.stdout)).toEqual({ replayed: 0, unmatched: ['999999'] });

    const rest = await cli(['replay', '--all', '--outbox', outboxPath]);
    expect(rest.stdout).toMatch(/^replayed 4 dead letters;/);
    await waitFor(() => delivered.length >= 6, { ...WAIT, what: 'every delivery' });
    await waitFor(async () => (await bus.outboxStats()).pending === 0, { ...WAIT, what: 'an empty outbox' });

    expect([...delivered].sort()).toEqual(
      eventIds.flatMap((id) => [`orders ${id}`, `payments ${id}`]).sort(),
    );
    const status = JSON.parse((await cli(['status', '--json', '--outbox', outboxPath])).stdout);
    expect(status).toMatchObject({ pending: 0, deadLetters: 0 });
  }, 60_000);
});

describe('events-library secret', () => {
  it('prints a fresh whsec_ secret of 32 random bytes and nothing else; the library accepts it', async () => {
    const [first, second] = await Promise.all([cli(['secret']), cli(['secret'])]);
    for (const run of [first, second]) {
      expect(run).toMatchObject({ code: 0, stderr: '' });
      expect(run.stdout).toMatch(/^whsec_[A-Za-z0-9+/]{43}=\n$/);
      expect(Buffer.from(run.stdout.trim().slice('whsec_'.length), 'base64')).toHaveLength(32);
    }
    expect(first.stdout).not.toBe(second.stdout);
    const secret = first.stdout.trim();
    const checked = createEventBus({ service: 'users', secret, logger: quietLogger(), services: { payments: { url: 'http://127.0.0.1:1/events', secret } } });
    expect(() => checked.declareEvent('user-created', ['payments'])).not.toThrow();
    await checked.close();
  }, 30_000);
});

describe('events-library usage and errors', () => {
  it('prints usage for help and --help on stdout, exit 0', async () => {
    for (const args of [['help'], ['--help'], ['status', '-h']]) {
      const { code, stdout } = await cli(args);
      expect(code).toBe(0);
      expect(stdout).toMatch(/^Usage: events-library <command>/);
      expect(stdout).toContain('EVENTS_OUTBOX_PATH');
      expect(stdout).toContain('secret');
    }
  }, 60_000);

  it('exits 2 with no command at all, the usage on stderr and nothing on stdout', async () => {
    const { code, stdout, stderr } = await cli([]);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain('which command?');
    expect(stderr).toContain('Usage: events-library <command>');
  }, 30_000);

  it('no command, or an unknown one, names every command --help lists (the broker ones included)', async () => {
    const help = (await cli(['--help'])).stdout;
    const section = help.slice(help.indexOf('Commands:'), help.indexOf('\n\n', help.indexOf('Commands:')));
    const commands = [...section.matchAll(/^ {2}([a-z-]+)/gm)].map((match) => match[1]!);
    expect(commands).toEqual(expect.arrayContaining(['status', 'dead-letters', 'replay', 'discard', 'migrate', 'secret', 'help']));
    expect(help).toContain('--broker <url>');
    const none = (await cli([])).stderr;
    const unknown = (await cli(['stats'])).stderr;
    for (const command of commands) {
      expect(none).toMatch(new RegExp(`^ {2}${command}\\b`, 'm'));
      expect(unknown).toContain(command);
    }
    expect(none).toContain('--broker <url>');
  }, 60_000);

  it('exits 1 when a replayed id matches no dead letter, naming each one', async () => {
    const unknown = await cli(['replay', '424242', 'no-such-event', '--outbox', outboxPath]);
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toBe('replayed 0 dead letters\n');
    expect(unknown.stderr).toContain('no dead letter matches "424242", "no-such-event"');
    expect(unknown.stderr).toContain('events-library dead-letters');
  }, 30_000);

  it('exits 2 on an unknown command or option, saying what to do', async () => {
    const unknown = await cli(['stats', '--outbox', outboxPath]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "stats": use status, dead-letters, replay, discard, console, migrate, secret or help');
    const option = await cli(['status', '--verbose', '--outbox', outboxPath]);
    expect(option.code).toBe(2);
    expect(option.stderr).toContain("'--verbose'");
    expect(option.stderr).toContain('events-library help');
  }, 30_000);

  it('exits 2 without an outbox path, naming EVENTS_OUTBOX_PATH and --outbox', async () => {
    const { code, stdout, stderr } = await cli(['status']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain('set EVENTS_OUTBOX_PATH or pass --outbox <path>');
  }, 30_000);

  it('exits 2 for a file that does not exist, and does not create it', async () => {
    const missing = dir.file('typo.db');
    for (const args of [['status'], ['dead-letters'], ['replay', '--all']]) {
      const { code, stderr } = await cli([...args, '--outbox', missing]);
      expect(code).toBe(2);
      expect(stderr).toContain(`the outbox file ${missing} does not exist`);
    }
    expect(existsSync(missing)).toBe(false);
  }, 60_000);

  it('exits 2 for replay or discard without ids, a filter or --all, or with both ids and --all', async () => {
    for (const command of ['replay', 'discard']) {
      const neither = await cli([command, '--outbox', outboxPath]);
      expect(neither.code).toBe(2);
      expect(neither.stderr).toContain('their ids, a filter (--target, --type, --event), or --all');
      const both = await cli([command, '12', '--all', '--outbox', outboxPath]);
      expect(both.code).toBe(2);
      expect(both.stderr).toContain('not both');
    }
  }, 30_000);

  it('exits 2 when two places are named, or an option that does not go with the place', async () => {
    const two = await cli(['status', '--outbox', outboxPath, '--broker', 'amqp://127.0.0.1:1']);
    expect(two.code).toBe(2);
    expect(two.stderr).toContain('pass one of --outbox, --broker');
    const prefix = await cli(['status', '--outbox', outboxPath, '--prefix', 'x.']);
    expect(prefix.code).toBe(2);
    expect(prefix.stderr).toContain('--prefix does not go with --outbox');
  }, 30_000);
});

describe('events-library discard', () => {
  it('deletes dead letters for good, by id or by filter, beside the running service; an id that matches nothing exits 1', async () => {
    answer = 400; // broken again
    const sent = delivered.length;
    const fresh: string[] = [];
    for (const email of ['x@example.com', 'y@example.com']) fresh.push((await bus.emit('user-created', { email })).id);
    await waitFor(async () => (await bus.deadLetters()).length === 4, { ...WAIT, what: '4 new dead letters' });
    const [one] = await bus.deadLetters({ eventId: fresh[0], target: 'payments' });

    const byId = await cli(['discard', one!.id, '--outbox', outboxPath]);
    expect(byId).toMatchObject({ code: 0, stderr: '', stdout: 'discarded 1 dead letter\n' });
    const byTarget = await cli(['discard', '--target', 'orders', '--json', '--outbox', outboxPath]);
    expect(byTarget).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(byTarget.stdout)).toEqual({ discarded: 2 });
    const again = await cli(['discard', one!.id, '--outbox', outboxPath]);
    expect(again.code).toBe(1);
    expect(again.stdout).toBe('discarded 0 dead letters\n');
    expect(again.stderr).toContain(`no dead letter matches "${one!.id}"`);

    expect((await bus.deadLetters()).map((d) => [d.eventId, d.target])).toEqual([[fresh[1], 'payments']]);
    expect(await bus.outboxStats()).toMatchObject({ pending: 0, deadLetters: 1 });
    expect(delivered).toHaveLength(sent); // discarded, not sent
  }, 60_000);
});

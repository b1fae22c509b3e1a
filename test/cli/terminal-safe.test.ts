/**
 * What the CLI prints is safe on an operator's terminal: a target's error body is stored in the
 * outbox and shown by `dead-letters`; its escape sequences (ESC, CSI as U+009B, bidi overrides)
 * must come out escaped, in the table and in --json, and so must anything else printed.
 * Real receiver on 127.0.0.1:0, real durable outbox, the CLI as a real child process.
 */
import { createEventBus, type DeadLetter, type EventBus } from '../../src/index.js';
import { runScript } from '../helpers/child.js';
import { quietLogger } from '../helpers/logger.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { tempDir, type TempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

/** A hostile error body: clear screen, set the window title, CSI colours, a right-to-left override, line breaks. */
const RAW_BODY = 'boom \x1b[2J\x1b]0;owned\x07 \u009b31mred\u009b0m \u202egnp.exe\nsecond\tline\r\x7f';
/** The same kind of thing inside the JSON answer's `message` (JSON escapes it on the wire; parsing it brings it back). */
const JSON_BODY = JSON.stringify({ error: 'invalid_data', message: 'cleared \x1b[2J \u009b1;1H \u2066\u202erev' });

/** Every character a terminal may act on, except the line breaks the CLI itself writes. */
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

const cli = (args: string[]) => runScript(['src/cli.ts', ...args]);

let dir: TempDir;
let outboxPath: string;
let server: TestServer;
let bus: EventBus;

beforeAll(async () => {
  dir = tempDir('cli-safe');
  outboxPath = dir.file('outbox.db');
  server = await startServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const raw = req.url?.startsWith('/raw/');
      res.writeHead(400, { 'content-type': raw ? 'text/plain' : 'application/json' });
      res.end(raw ? RAW_BODY : JSON_BODY);
    });
  });
  bus = createEventBus({
    service: 'users',
    secret: SECRET,
    logger: quietLogger(),
    services: { raw: `${server.origin}/raw/events`, json: `${server.origin}/json/events` },
    outbox: { path: outboxPath, pollIntervalMs: 100 },
  });
  bus.declareEvent('user-created', ['raw', 'json']);
  await bus.emit('user-created', { email: 'ada@example.com' });
  await waitFor(async () => (await bus.deadLetters()).length === 2, { timeoutMs: 15_000, what: '2 dead letters' });
}, 30_000);

afterAll(async () => {
  await bus?.close();
  await server?.close();
  dir.remove();
});

describe('the CLI prints control characters escaped', () => {
  it('dead-letters (table): the stored error bodies show their escapes as text', async () => {
    const { code, stdout, stderr } = await cli(['dead-letters', '--outbox', outboxPath]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).not.toMatch(RAW_CONTROL);
    const rows = stdout.trimEnd().split('\n');
    expect(rows).toHaveLength(3); // header + 2: the line breaks inside the bodies did not make lines
    const raw = rows.find((row) => / raw /.test(row))!;
    expect(raw).toContain('HTTP 400: boom \\x1b[2J\\x1b]0;owned\\x07 \\x9b31mred\\x9b0m \\u202egnp.exe\\n');
    const json = rows.find((row) => / json /.test(row))!;
    expect(json).toContain('HTTP 400 invalid_data: cleared \\x1b[2J \\x9b1;1H \\u2066\\u202erev');
  }, 30_000);

  it('dead-letters --json: escaped too, and still parses to exactly what is stored', async () => {
    const { code, stdout } = await cli(['dead-letters', '--json', '--outbox', outboxPath]);
    expect(code).toBe(0);
    expect(stdout).not.toMatch(RAW_CONTROL);
    expect(stdout).toContain('\\u001b[2J');
    expect(stdout).toContain('\\u009b31m');
    expect(stdout).toContain('\\u202egnp.exe');
    const letters = JSON.parse(stdout) as DeadLetter[];
    expect(letters.map((d) => d.error).sort()).toEqual((await bus.deadLetters()).map((d) => d.error).sort());
    expect(letters.find((d) => d.target === 'raw')!.error).toBe(`HTTP 400: ${RAW_BODY}`);
  }, 30_000);

  it('messages escape what they quote (a path, an argument)', async () => {
    const hostile = dir.file('\x1b[2J\u202eoutbox.db');
    const missing = await cli(['status', '--outbox', hostile]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).not.toMatch(RAW_CONTROL);
    expect(missing.stderr).toContain('\\x1b[2J\\u202eoutbox.db');
    const replay = await cli(['replay', '\x1b]0;owned\x07', '--outbox', outboxPath]);
    expect(replay.code).toBe(1);
    expect(replay.stderr).not.toMatch(RAW_CONTROL);
    expect(replay.stderr).toContain('"\\x1b]0;owned\\x07"');
  }, 30_000);
});

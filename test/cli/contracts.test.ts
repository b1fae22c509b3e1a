/**
 * The contract commands: `events-library asyncapi --module` (a real child process loading a
 * service's module in describe-only mode: no URL, secret or broker needed, nothing opened) and
 * `events-library check` (two documents, or `--all` a folder): exit 0 compatible, 1 incompatible
 * or not provably compatible (each finding names the type, the field and why), 2 usage.
 */
import { copyFileSync, writeFileSync } from 'node:fs';
import { createEventBus } from '../../src/index.js';
import { main } from '../../src/cli.js';
import { runScript } from '../helpers/child.js';
import { tempDir, type TempDir } from '../helpers/temp-dir.js';

let dir: TempDir;
beforeAll(() => {
  dir = tempDir('contracts');
});
afterAll(() => dir.remove());

/** Runs the CLI in this process (the `check` command reads files only). */
async function cli(...argv: string[]) {
  let out = '';
  let err = '';
  const code = await main(argv, {}, { out: (text) => (out += text), err: (text) => (err += text) });
  return { code, out, err };
}

/** A service document written to the folder, built by a bus (as `bus.asyncapi()` or the CLI makes it). */
function documentOf(name: string, build: (bus: ReturnType<typeof createEventBus>) => void, folder = dir.path): string {
  const bus = createEventBus({ service: name, env: {}, services: { users: 'http://127.0.0.1:1', payments: 'http://127.0.0.1:1', orders: 'http://127.0.0.1:1' }, secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' });
  build(bus);
  const file = `${folder}/${name}.json`;
  writeFileSync(file, JSON.stringify(bus.asyncapi()));
  void bus.close();
  return file;
}

describe('events-library asyncapi --module', () => {
  test('prints the document of the default bus a module declares on, with no target URL or secret set', async () => {
    const run = await runScript(['src/cli.ts', 'asyncapi', '--module', 'test/fixtures/contracts/users-events.ts'], { EVENTS_SERVICE_NAME: 'users' });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const document = JSON.parse(run.stdout);
    expect(document).toMatchObject({ asyncapi: '3.0.0', info: { title: 'users' } });
    expect(document.operations['send.user-created']).toMatchObject({ action: 'send', 'x-targets': ['payments', 'orders'] });
    expect(document.operations['receive.payment-failed']).toMatchObject({ action: 'receive', 'x-handler': 'Users.onPaymentFailed' });
    writeFileSync(dir.file('users.json'), run.stdout);
  });

  test('prints the document of a bus the module exports, configured for a broker it never connects to', async () => {
    const run = await runScript(['src/cli.ts', 'asyncapi', '--module', './test/fixtures/contracts/payments-bus.ts'], {}, { killAfterMs: 15_000 });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ info: { title: 'payments' }, operations: { 'receive.user-created': { 'x-handler': 'Customers.create' } } });
    writeFileSync(dir.file('payments.json'), run.stdout);
  });

  test('usage: no module, no such file, or a module without a service name', async () => {
    expect(await cli('asyncapi')).toMatchObject({ code: 2, err: expect.stringContaining('--module') });
    expect(await cli('asyncapi', '--module', dir.file('nothing.js'))).toMatchObject({ code: 2, err: expect.stringContaining('no module at') });
    const run = await runScript(['src/cli.ts', 'asyncapi', '--module', 'test/fixtures/contracts/users-events.ts']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('EVENTS_SERVICE_NAME');
  });
});

describe('events-library check', () => {
  test('exit 0 when every payload the producer may send is valid for the consumer', async () => {
    const result = await cli('check', dir.file('users.json'), dir.file('payments.json'));
    expect(result).toEqual({ code: 0, out: 'ok: users → payments: user-created\ncompatible: 1 pair of services checked\n', err: '' });
  });

  test('exit 1 with a finding per field: the event type, the JSON pointer and why', async () => {
    const orders = documentOf('orders', (bus) =>
      bus.subscribeTo('user-created', async () => {}, {
        schema: { type: 'object', properties: { email: { type: 'string' }, name: { type: 'string' } }, required: ['email', 'name'] },
      }),
    );
    const result = await cli('check', dir.file('users.json'), orders);
    expect(result.code).toBe(1);
    expect(result.out).toBe(
      'users → orders: user-created /name: the consumer requires this field; the producer never sends it\nnot compatible: 1 finding\n',
    );
  });

  test('exit 1, saying "cannot prove", where that is the reason', async () => {
    const strict = documentOf('strict', (bus) =>
      bus.subscribeTo('user-created', async () => {}, { schema: { type: 'object', properties: { email: { type: 'string', pattern: '@example\\.com$' } } } }),
    );
    const result = await cli('check', dir.file('users.json'), strict);
    expect(result.code).toBe(1);
    expect(result.out).toContain('users → strict: user-created /email: cannot prove: the consumer requires strings matching /@example\\.com$/');
    expect(result.out).toContain('(1 cannot prove)');
  });

  test('exit 0 when the two have no type in common (nothing to check); --json for machines', async () => {
    expect(await cli('check', dir.file('payments.json'), dir.file('payments.json'))).toMatchObject({ code: 0, out: expect.stringContaining('nothing to check') });
    const json = await cli('check', '--json', dir.file('users.json'), dir.file('orders.json'));
    expect(json.code).toBe(1);
    expect(JSON.parse(json.out)).toEqual({
      compatible: false,
      checks: [{ producer: 'users', consumer: 'orders', types: ['user-created'], findings: [expect.objectContaining({ type: 'user-created', pointer: '/name', cannotProve: false })] }],
    });
  });

  test('--all DIR checks every ordered pair of the folder\'s documents: one CI job for the whole system', async () => {
    const system = tempDir('contracts-system');
    try {
      copyFileSync(dir.file('users.json'), system.file('users.json'));
      copyFileSync(dir.file('payments.json'), system.file('payments.json'));
      const fine = await cli('check', '--all', system.path);
      expect(fine.code).toBe(0);
      // payments → users (payment-failed) and users → payments (user-created), both fine.
      expect(fine.out).toBe('ok: payments → users: payment-failed\nok: users → payments: user-created\ncompatible: 2 pairs of services checked\n');

      documentOf('orders', (bus) => bus.subscribeTo('user-created', async () => {}, { schema: { type: 'object', required: ['name'] } }), system.path);
      const broken = await cli('check', system.path, '--all');
      expect(broken.code).toBe(1);
      expect(broken.out).toContain('users → orders: user-created /name: the consumer requires this field; the producer never sends it');
      expect(broken.out).toContain('ok: users → payments: user-created');
    } finally {
      system.remove();
    }
  });

  test('exit 2 on wrong usage: one file, a missing file, a file that is not an AsyncAPI 3 document, an empty folder', async () => {
    writeFileSync(dir.file('not-asyncapi.json'), JSON.stringify({ openapi: '3.1.0' }));
    writeFileSync(dir.file('broken.json'), '{ "asyncapi": ');
    const empty = tempDir('contracts-empty');
    const cases: Array<[string[], RegExp]> = [
      [['check', dir.file('users.json')], /check takes two files/],
      [['check', dir.file('users.json'), dir.file('missing.json')], /missing\.json: no such file/],
      [['check', dir.file('not-asyncapi.json'), dir.file('users.json')], /not an AsyncAPI 3 document/],
      [['check', dir.file('users.json'), dir.file('broken.json')], /broken\.json: not a JSON document/],
      [['check', '--all'], /check --all takes one folder/],
      [['check', '--all', empty.path], /holds no service documents/],
      [['check', '--module', 'x', 'a', 'b'], /check does not take --module/],
    ];
    for (const [argv, message] of cases) {
      const result = await cli(...argv);
      expect({ argv, code: result.code }).toEqual({ argv, code: 2 });
      expect(result.err).toMatch(message);
    }
    empty.remove();
  });
});

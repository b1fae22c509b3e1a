// Issue 6 item 11: the module-level default bus drains on SIGTERM/SIGINT, logs what it could not
// deliver with its event id, and re-raises the signal so that the process exits by it. Real child
// processes (test/fixtures/serve-until-signal.ts), a real target on 127.0.0.1.
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { jsonLines, startFixture } from '../helpers/child.js';
import { startRecordingServer } from '../helpers/recording-server.js';
import { freePort } from '../helpers/server.js';
import { newSecret } from '../helpers/signing.js';

const cleanups = cleanupAfterEach();

const env = (url: string, extra: Record<string, string> = {}) => ({
  EVENTS_SERVICE_NAME: 'users',
  EVENTS_SECRET: newSecret(),
  EVENTS_SERVICE_SINK_SERVICE_URL: url,
  EVENTS_LOG_LEVEL: 'info',
  ...extra,
});

const emittedIds = (stdout: string) => [...stdout.matchAll(/^emitted (\S+)$/gm)].map((m) => m[1]!);

describe('the default bus on SIGTERM / SIGINT', () => {
  it('target down, in-memory outbox: SIGTERM drains, logs each undelivered event with its id (no payload), and the process exits by SIGTERM', async () => {
    const url = `http://127.0.0.1:${await freePort()}/events`;
    const running = startFixture('serve-until-signal.ts', env(url, { FIXTURE_EVENTS: '2', FIXTURE_SHUTDOWN_MS: '1000' }));
    await running.line(/^ready$/);
    running.child.kill('SIGTERM');
    const result = await running.result;

    expect(result.stderr).toBe('');
    expect([result.code, result.signal]).toEqual([null, 'SIGTERM']);
    const ids = emittedIds(result.stdout);
    expect(ids).toHaveLength(2);
    const lines = jsonLines(result.stdout);
    expect(lines.filter((l) => l.message === 'signal received; draining the event bus before exit')).toEqual([
      expect.objectContaining({ level: 'info', signal: 'SIGTERM' }),
    ]);
    const undelivered = lines.filter((l) => String(l.message).startsWith('undelivered at shutdown'));
    expect(undelivered.map((l) => l.eventId).sort()).toEqual([...ids].sort());
    for (const line of undelivered) {
      expect(line).toMatchObject({ level: 'error', type: 'ping', target: 'sink-service' });
      expect(line).not.toHaveProperty('body');
    }
    expect(result.stdout).not.toContain('payload-marker'); // no payload at info level, anywhere
  });

  it('a reachable target: SIGTERM right after emit delivers the event before the process exits by SIGTERM', async () => {
    const sink = await startRecordingServer({ then: { status: 200, delayMs: 300 } });
    cleanups.push(() => sink.close());
    const running = startFixture('serve-until-signal.ts', env(sink.url));
    const [id] = emittedIds(await running.line(/^emitted /));
    running.child.kill('SIGTERM');
    const result = await running.result;

    expect(result.stderr).toBe('');
    expect([result.code, result.signal]).toEqual([null, 'SIGTERM']);
    expect(sink.requests.map((r) => [r.headers['webhook-id'], r.status])).toEqual([[id, 200]]);
    const lines = jsonLines(result.stdout);
    expect(lines.filter((l) => l.message === 'event delivered')).toEqual([expect.objectContaining({ eventId: id, status: 200 })]);
    expect(lines.filter((l) => String(l.message).startsWith('undelivered at shutdown'))).toEqual([]);
  });

  it('SIGINT drains the same way and the process exits by SIGINT', async () => {
    const sink = await startRecordingServer({ then: { status: 200, delayMs: 200 } });
    cleanups.push(() => sink.close());
    const running = startFixture('serve-until-signal.ts', env(sink.url));
    const [id] = emittedIds(await running.line(/^emitted /));
    running.child.kill('SIGINT');
    const result = await running.result;
    expect([result.code, result.signal]).toEqual([null, 'SIGINT']);
    expect(sink.requests.map((r) => [r.headers['webhook-id'], r.status])).toEqual([[id, 200]]);
  });

  it('an app with its own SIGTERM listener owns the exit: the bus drains, the signal is not re-raised, the app exits 0 by itself', async () => {
    const sink = await startRecordingServer({ then: { status: 200, delayMs: 200 } });
    cleanups.push(() => sink.close());
    const running = startFixture('serve-until-signal.ts', env(sink.url, { FIXTURE_APP_LISTENER: '1' }));
    const [id] = emittedIds(await running.line(/^emitted /));
    running.child.kill('SIGTERM');
    const result = await running.result;
    expect(result.stderr).toBe('');
    expect([result.code, result.signal]).toEqual([0, null]);
    expect(result.stdout).toMatch(/^app closed$/m);
    // The app's own `await close()` waited for the drain that the library's listener started.
    expect(result.stdout.indexOf('app closed')).toBeGreaterThan(result.stdout.indexOf('"event delivered"'));
    expect(result.stdout).toContain('"event delivered"');
    expect(sink.requests.map((r) => [r.headers['webhook-id'], r.status])).toEqual([[id, 200]]);
  });

  it('with a signal-exit hook installed (as many tools do), the bus drains, re-raises, and the process still exits by SIGTERM', async () => {
    const sink = await startRecordingServer({ then: { status: 200, delayMs: 200 } });
    cleanups.push(() => sink.close());
    const running = startFixture('serve-until-signal.ts', env(sink.url, { FIXTURE_SIGNAL_EXIT: '1' }), { killAfterMs: 8_000 });
    const [id] = emittedIds(await running.line(/^emitted /));
    running.child.kill('SIGTERM');
    const result = await running.result;
    expect([result.code, result.signal]).toEqual([null, 'SIGTERM']);
    expect(result.stdout).toMatch(/^exit hook SIGTERM$/m);
    expect(sink.requests.map((r) => [r.headers['webhook-id'], r.status])).toEqual([[id, 200]]);
  });

  it('EVENTS_HANDLE_SIGNALS=false installs nothing: SIGTERM ends the process at once, nothing drained', async () => {
    const sink = await startRecordingServer({ then: 'hang' });
    cleanups.push(() => sink.close());
    const running = startFixture('serve-until-signal.ts', env(sink.url, { EVENTS_HANDLE_SIGNALS: 'false' }));
    await running.line(/^ready$/);
    running.child.kill('SIGTERM');
    const result = await running.result;
    expect([result.code, result.signal]).toEqual([null, 'SIGTERM']);
    expect(jsonLines(result.stdout).filter((l) => l.message !== 'event emitted')).toEqual([]);
  });
});

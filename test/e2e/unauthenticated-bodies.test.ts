import { createEventBus, type EventBusOptions } from '../../src/index.js';
import { request } from '../helpers/http-client.js';
import { createCapturingLogger } from '../helpers/logger.js';
import { openRawRequest, type RawConnection } from '../helpers/raw-http.js';
import { mount, MOUNTS } from '../helpers/mounts.js';
import type { TestServer } from '../helpers/server.js';
import { newSecret, signedStructured, structuredEvent } from '../helpers/signing.js';
import { gate, waitFor } from '../helpers/wait.js';

/**
 * Issue 6 item 2: nothing is buffered before authentication that the headers alone can refuse,
 * a body has a read deadline, and the bytes held by unauthenticated requests are bounded.
 * Real servers, real sockets written by hand: the test decides which bytes are sent and when.
 */

const open: Array<{ close(): Promise<void> }> = [];
const sockets: RawConnection[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(open.splice(0).map((o) => o.close()));
});

/** Plausible Standard Webhooks headers with a fresh timestamp but a signature nobody can check without the body. */
function forgedHeaders(length: number | 'chunked'): Record<string, string> {
  return {
    'content-type': 'application/cloudevents+json',
    'webhook-id': 'msg_forged',
    'webhook-timestamp': String(Math.floor(Date.now() / 1000)),
    'webhook-signature': `v1,${Buffer.alloc(32, 7).toString('base64')}`,
    ...(length === 'chunked' ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(length) }),
  };
}

describe.each(MOUNTS.map((m) => m.name))('unauthenticated bodies (%s)', (framework) => {
  let secret: string;
  let server: TestServer;
  let calls: number;
  let log: ReturnType<typeof createCapturingLogger>;
  let hold: ReturnType<typeof gate> | undefined;

  async function setup(options: EventBusOptions = {}): Promise<void> {
    secret = newSecret();
    calls = 0;
    hold = undefined;
    log = createCapturingLogger();
    const bus = createEventBus({ service: 'payments', secret, logger: log.logger, env: {}, ...options });
    open.push(bus);
    bus.subscribeTo('user-created', async () => {
      calls += 1;
      await hold?.wait();
    });
    server = await mount(framework).start(bus);
    open.push(server);
  }

  async function connect(headers: Record<string, string | string[]>): Promise<RawConnection> {
    const connection = await openRawRequest(server.port, '/events', headers);
    sockets.push(connection);
    return connection;
  }

  const headerRefusals: Array<[string, Record<string, string>, number]> = [
    ['no webhook-* headers', { 'content-type': 'application/cloudevents+json', 'content-length': '5000' }, 401],
    ['a malformed webhook-timestamp', { ...forgedHeaders(5000), 'webhook-timestamp': 'yesterday' }, 401],
    ['a webhook-timestamp an hour old', { ...forgedHeaders(5000), 'webhook-timestamp': String(Math.floor(Date.now() / 1000) - 3600) }, 401],
    ['a webhook-timestamp an hour ahead', { ...forgedHeaders(5000), 'webhook-timestamp': String(Math.floor(Date.now() / 1000) + 3600) }, 401],
    ['no webhook-signature', (({ 'webhook-signature': _s, ...rest }) => rest)(forgedHeaders(5000)), 401],
    ['a declared content-length over the limit', forgedHeaders(2 * 1024 * 1024), 413],
  ];

  it.each(headerRefusals)('%s: answered from the headers alone, before any body byte is sent, and the connection closed', async (_what, headers, status) => {
    await setup();
    const connection = await connect(headers);
    // Not one body byte is written: the answer must come anyway.
    const answer = await connection.answer;
    expect(answer.status).toBe(status);
    expect(answer.headers.connection).toBe('close');
    await connection.closed; // the server does not wait to drain the unread body
    expect(calls).toBe(0);
  });

  it('50 unauthenticated connections at once are each refused before their body is read, none reaches a handler', async () => {
    await setup();
    const connections = await Promise.all(
      Array.from({ length: 50 }, () => connect({ 'content-type': 'application/cloudevents+json', 'content-length': String(1024 * 1024) })),
    );
    const answers = await Promise.all(connections.map((c) => c.answer));
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 401));
    await Promise.all(connections.map((c) => c.closed));
    expect(calls).toBe(0);
  });

  it('a body that trickles past the read deadline gets 408 and the connection closed', async () => {
    await setup({ bodyTimeoutMs: 300 });
    const connection = await connect(forgedHeaders(1000));
    connection.write('{"specversion":"1.0",'); // … and nothing more
    const answer = await connection.answer;
    expect(answer.status).toBe(408);
    expect(JSON.parse(answer.body)).toMatchObject({ error: 'body_timeout' });
    expect(answer.headers.connection).toBe('close');
    await connection.closed;
    expect(calls).toBe(0);
  });

  it('bytes held by unauthenticated requests are bounded: beyond the budget 503 + Retry-After as the bytes arrive; an aborted client gives its share back', async () => {
    await setup({ maxUnverifiedBytes: 10_000, bodyStartTimeoutMs: 60_000 });
    const holder = await connect(forgedHeaders(8_000));
    holder.write('x'.repeat(7_000)); // holds the 7,000 bytes that arrived (not its declared 8,000)
    await waitFor(async () => {
      // The holder's bytes are counted as they are read; poll until then.
      const probe = await connect(forgedHeaders(4_000));
      probe.write('y'.repeat(4_000));
      const answer = await probe.answer;
      return answer.status === 503 && answer;
    }, { what: 'a 503 while the budget is held' }).then((answer) => {
      expect(answer.headers['retry-after']).toMatch(/^\d+$/);
      expect(answer.headers.connection).toBe('close');
    });

    holder.destroy(); // the client goes away: its 8,000 bytes must come back
    const event = structuredEvent('user-created', { pad: 'p'.repeat(3_000) });
    const res = await waitFor(async () => {
      const answer = await request(server.url, signedStructured(secret, event));
      return answer.status === 200 && answer;
    }, { what: 'the budget released after the abort' });
    expect(res.status).toBe(200);
    expect(calls).toBe(1);
  });

  it('headers-only clients (content-length 1 MiB, a fresh timestamp, a junk signature) hold nothing: with 40 of them open and more arriving, every signed event is accepted', async () => {
    await setup({ bodyStartTimeoutMs: 60_000 }); // they stay for the whole test
    // 40 declared MiB: more than the 32 MiB budget, had declared lengths been claimed.
    const silent = await Promise.all(Array.from({ length: 40 }, () => connect(forgedHeaders(1024 * 1024))));
    for (let round = 0; round < 5; round += 1) {
      silent.push(...(await Promise.all(Array.from({ length: 8 }, () => connect(forgedHeaders(1024 * 1024))))));
      const res = await request(server.url, signedStructured(secret, structuredEvent('user-created', { round })));
      expect(res.status).toBe(200);
    }
    expect(calls).toBe(5);
    expect(silent.filter((c) => c.isClosed())).toEqual([]);
  });

  it('a client that sends no body byte before the start deadline gets 408 and its connection closed', async () => {
    await setup({ bodyStartTimeoutMs: 200, bodyTimeoutMs: 60_000 });
    const connection = await connect(forgedHeaders(1024 * 1024));
    const answer = await connection.answer;
    expect(answer.status).toBe(408);
    expect(JSON.parse(answer.body)).toMatchObject({ error: 'body_timeout', message: expect.stringContaining('no byte of the request body arrived within 200 ms') });
    expect(answer.headers.connection).toBe('close');
    await connection.closed;
  });

  it('slow clients (still sending past the start deadline) hold at most half the budget: the rest stays for prompt requests', async () => {
    await setup({ maxUnverifiedBytes: 10_000, bodyStartTimeoutMs: 200, bodyTimeoutMs: 60_000 });
    const slow = await Promise.all(Array.from({ length: 3 }, () => connect(forgedHeaders(5_000))));
    const refused: number[] = [];
    for (const connection of slow) {
      connection.write('z'.repeat(3_000)); // … and nothing more
      void connection.answer.then((a) => refused.push(a.status), () => undefined);
    }
    // Past the deadline each counts as slow: one fits in the 5,000-byte slow share, the others are refused.
    await waitFor(() => refused.length === 2, { what: 'two slow clients refused' });
    expect(refused).toEqual([503, 503]);
    const res = await request(server.url, signedStructured(secret, structuredEvent('user-created', { pad: 'p'.repeat(4_000) })));
    expect(res.status).toBe(200); // 3,000 slow + 4,000 prompt bytes fit in 10,000
    expect(calls).toBe(1);
  });

  it('a chunked body (no declared length) is counted as it arrives: past the budget, 503 and the connection closed', async () => {
    await setup({ maxUnverifiedBytes: 10_000 });
    const connection = await connect(forgedHeaders('chunked'));
    const chunk = 'y'.repeat(4_000);
    for (let i = 0; i < 4 && !connection.isClosed(); i += 1) connection.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
    const answer = await connection.answer;
    expect(answer.status).toBe(503);
    expect(answer.headers['retry-after']).toMatch(/^\d+$/);
    await connection.closed;
    expect(calls).toBe(0);
  });

  it('an authenticated request gives its share back once verified: a slow handler does not hold the budget', async () => {
    await setup({ maxUnverifiedBytes: 10_000 });
    hold = gate();
    const first = request(server.url, signedStructured(secret, structuredEvent('user-created', { pad: 'a'.repeat(6_000) })));
    await waitFor(() => calls === 1, { what: 'the first handler running' });
    // 6,000 + 6,000 bytes would exceed the budget if the first request still held its share.
    const second = request(server.url, signedStructured(secret, structuredEvent('user-created', { pad: 'b'.repeat(6_000) })));
    await waitFor(() => calls === 2, { what: 'the second handler running while the first one is' });
    hold.open();
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
  });
});

// Issue 16 item 22: nothing a peer sends makes logging throw. A receiver at debug level logs the
// data of every event it handles; an event nested 5,000 deep (or a huge one) must still be
// answered 200, every time, with its data left out of (or cut in) the log line.
import { createEventBus, type EventBus } from '../../src/index.js';
import { request } from '../helpers/http-client.js';
import { createCapturingLogger, type CapturingLogger } from '../helpers/logger.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { newSecret, signedStructured, STRUCTURED, structuredEvent, webhookHeaders } from '../helpers/signing.js';

/** `{ "a": { "a": … } }`, `depth` objects deep, built as text (building it as an object and serialising it would overflow here). */
function nestedJson(depth: number): string {
  return `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

describe('payloads in debug log lines are bounded (issue 16 item 22)', () => {
  let secret: string;
  let log: CapturingLogger;
  let bus: EventBus;
  let server: TestServer;
  let runs: number;

  beforeEach(async () => {
    secret = newSecret();
    runs = 0;
    log = createCapturingLogger('debug');
    bus = createEventBus({ service: 'payments', secret, logger: log.logger, env: {} });
    bus.subscribeTo('deep', () => void (runs += 1));
    server = await startServer(bus.nodeHandler());
  });
  afterEach(async () => {
    await server.close();
    await bus.close();
  });

  /** The event, signed afresh each time (as a sender's retry is), with `data` spliced in as raw JSON text. */
  function signedWithData(event: Record<string, unknown>, dataJson: string) {
    const body = JSON.stringify({ ...event, data: '§' }).replace('"§"', dataJson);
    return { body, headers: { 'content-type': STRUCTURED, ...webhookHeaders(secret, String(event.id), body) } };
  }

  it('an event nested 5,000 deep: 200, then a duplicate 200 on redelivery; the handler ran once; the log line says the data was left out', async () => {
    const event = structuredEvent('deep', null);
    const deep = nestedJson(5_000);
    const first = await request(server.url, signedWithData(event, deep));
    expect(first.status).toBe(200);
    const again = await request(server.url, signedWithData(event, deep));
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ status: 'duplicate', id: event.id });
    expect(runs).toBe(1);
    const data = log.withMessage('event data');
    expect(data.length).toBeGreaterThanOrEqual(1);
    for (const line of data) expect(String(line.data)).toMatch(/not logged: nested deeper than \d+ levels/);
  });

  it('a 600 KB event: handled, and its log line carries a cut of the data, not all of it', async () => {
    const event = structuredEvent('deep', { blob: 'x'.repeat(600_000) });
    const answer = await request(server.url, signedStructured(secret, event));
    expect(answer.status).toBe(200);
    const [line] = log.withMessage('event data');
    expect(typeof line!.data).toBe('string');
    expect(String(line!.data)).toMatch(/truncated/);
    expect(String(line!.data).length).toBeLessThan(20_000);
  });
});

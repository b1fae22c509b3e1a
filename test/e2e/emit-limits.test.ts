// Issue 6 item 12: emit rejects, recording and sending nothing, a payload receivers would refuse
// (over the body limit) or one too deep to serialise, with a typed error that says what to do.
import {
  createEventBus,
  DEFAULTS,
  EventsError,
  PayloadTooDeepError,
  PayloadTooLargeError,
  type EventBus,
  type EventBusOptions,
} from '../../src/index.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { quietLogger } from '../helpers/logger.js';
import { startRecordingServer, type RecordingServer } from '../helpers/recording-server.js';
import { newSecret } from '../helpers/signing.js';
import { sleep, waitFor } from '../helpers/wait.js';

const TYPE = 'report-ready';
const cleanups = cleanupAfterEach();

async function setup(options: EventBusOptions = {}): Promise<{ bus: EventBus; target: RecordingServer }> {
  const target = await startRecordingServer();
  const bus = createEventBus({
    service: 'reports',
    secret: newSecret(),
    services: { archive: target.url },
    logger: quietLogger(),
    env: {},
    ...options,
  });
  bus.declareEvent(TYPE, ['archive']);
  cleanups.push(() => target.close(), () => bus.close());
  return { bus, target };
}

/** `{ a: { a: … { a: 1 } } }`, `levels` objects deep. */
function nested(levels: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < levels; i += 1) value = { a: value };
  return value;
}

async function expectNothingSent(bus: EventBus, target: RecordingServer): Promise<void> {
  expect(await bus.outboxStats()).toMatchObject({ pending: 0, deadLetters: 0 });
  await sleep(50);
  expect(target.requests).toEqual([]);
}

describe('emit refuses a payload nested too deep', () => {
  it('10 000 levels (JSON.stringify would throw a bare RangeError): PayloadTooDeepError, nothing recorded or sent', async () => {
    const { bus, target } = await setup();
    const error = await bus.emit(TYPE, nested(10_000)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PayloadTooDeepError);
    expect(error).toBeInstanceOf(EventsError);
    expect(error).toMatchObject({ name: 'PayloadTooDeepError', type: TYPE, limit: DEFAULTS.maxPayloadDepth });
    expect((error as Error).message).toMatch(/deeper than 64 levels.*maxPayloadDepth/);
    await expectNothingSent(bus, target);
  });

  it('the limit is exact: 64 levels are sent, 65 are refused; maxPayloadDepth raises it', async () => {
    const { bus, target } = await setup();
    await expect(bus.emit(TYPE, nested(65))).rejects.toBeInstanceOf(PayloadTooDeepError);
    await bus.emit(TYPE, nested(64));
    await waitFor(() => target.requests.length === 1, { what: 'the 64-level event' });

    const raised = await setup({ maxPayloadDepth: 200 });
    await raised.bus.emit(TYPE, nested(150));
    await waitFor(() => raised.target.requests.length === 1, { what: 'the 150-level event' });
  });

  it('a maxPayloadDepth beyond what the stack holds still refuses an unserialisable payload with PayloadTooDeepError', async () => {
    const { bus, target } = await setup({ maxPayloadDepth: 1_000_000_000 });
    await expect(bus.emit(TYPE, nested(100_000))).rejects.toBeInstanceOf(PayloadTooDeepError);
    await expectNothingSent(bus, target);
  });

  it('arrays count as levels, and a payload that refers to itself is refused the same way', async () => {
    const { bus, target } = await setup();
    let deepArray: unknown = [];
    for (let i = 0; i < 100; i += 1) deepArray = [deepArray];
    await expect(bus.emit(TYPE, { list: deepArray })).rejects.toBeInstanceOf(PayloadTooDeepError);
    const circular: Record<string, unknown> = { name: 'loop' };
    circular.self = circular;
    await expect(bus.emit(TYPE, circular)).rejects.toBeInstanceOf(PayloadTooDeepError);
    await expectNothingSent(bus, target);
  });
});

describe('emit refuses a payload over the body limit', () => {
  it('2 MiB (which the receiver would refuse with 413): PayloadTooLargeError naming the option, nothing recorded or sent', async () => {
    const { bus, target } = await setup();
    const error = await bus.emit(TYPE, { blob: 'x'.repeat(2 * 1024 * 1024) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PayloadTooLargeError);
    expect(error).toMatchObject({ name: 'PayloadTooLargeError', type: TYPE, limit: DEFAULTS.bodyLimitBytes });
    expect((error as PayloadTooLargeError).bytes).toBeGreaterThan(2 * 1024 * 1024);
    expect((error as Error).message).toMatch(/bodyLimitBytes/);
    await expectNothingSent(bus, target);
  });

  it('counts bytes, not characters: 400 000 three-byte characters (1.2 MB) are refused', async () => {
    const { bus, target } = await setup();
    await expect(bus.emit(TYPE, { text: '€'.repeat(400_000) })).rejects.toBeInstanceOf(PayloadTooLargeError);
    await expectNothingSent(bus, target);
  });

  it('an event just under the limit is sent; a raised bodyLimitBytes lets a larger one through', async () => {
    const { bus, target } = await setup({ bodyLimitBytes: 4096 });
    await bus.emit(TYPE, { blob: 'x'.repeat(3800) });
    await waitFor(() => target.requests.length === 1, { what: 'the event under the limit' });
    expect(target.requests[0]!.rawBody.length).toBeLessThanOrEqual(4096);
    await expect(bus.emit(TYPE, { blob: 'x'.repeat(4096) })).rejects.toBeInstanceOf(PayloadTooLargeError);
  });
});

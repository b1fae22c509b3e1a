import { MemoryInbox } from '../../src/backends/memory/inbox.js';
import { batchSteps, brokerStep } from '../../src/backends/broker-verdict.js';
import { Catalog } from '../../src/catalog.js';
import { NonRetryableError, RetryLaterError } from '../../src/errors/index.js';
import { Telemetry } from '../../src/observe/telemetry.js';
import { parseSecret } from '../../src/protocol/signature.js';
import { ReceivePipeline, type ReceivedMessage } from '../../src/receive/pipeline.js';
import { statusOf, type Verdict } from '../../src/receive/verdict.js';
import { createCapturingLogger } from '../helpers/logger.js';
import { signedBatch } from '../helpers/signed-batch.js';
import { newSecret, signedStructured, structuredEvent } from '../helpers/signing.js';

/**
 * The receive pipeline alone, with no transport: what it decides (a verdict) for each kind of
 * message; and how a broker consumer settles each verdict (brokerStep).
 */

const Schema = { type: 'object', required: ['user_id'], properties: { user_id: { type: 'string' } } } as const;

function setup() {
  const secret = newSecret();
  const log = createCapturingLogger('debug');
  const catalog = new Catalog();
  const pipeline = new ReceivePipeline({
    catalog,
    inbox: new MemoryInbox(1000),
    logger: log.logger,
    telemetry: Telemetry.off(log.logger),
    keys: [parseSecret(secret)],
    toleranceSeconds: 300,
    retryAfterSeconds: 7,
    maxUnrecorded: 100,
    service: 'billing',
  });
  const message = (event: Record<string, unknown>, signedAt?: Date): ReceivedMessage => {
    const { headers, body } = signedStructured(secret, event, signedAt);
    return { headers, body: Buffer.from(body) };
  };
  return { secret, log, catalog, pipeline, message };
}

describe('receive pipeline: one verdict per kind', () => {
  test('done: every handler ran and completed', async () => {
    const { catalog, pipeline, message } = setup();
    const runs: unknown[] = [];
    catalog.subscribe('user-created', (data) => void runs.push(data), Schema);
    const event = structuredEvent('user-created', { user_id: 'u_1' });
    expect(await pipeline.receive(message(event))).toEqual({ kind: 'done', id: event.id });
    expect(runs).toEqual([{ user_id: 'u_1' }]);
  });

  test('duplicate: the same source + id again runs nothing', async () => {
    const { catalog, pipeline, message } = setup();
    let runs = 0;
    catalog.subscribe('user-created', () => void (runs += 1), undefined);
    const event = structuredEvent('user-created', { user_id: 'u_1' });
    await pipeline.receive(message(event));
    expect(await pipeline.receive(message(event))).toEqual({ kind: 'duplicate', id: event.id });
    expect(runs).toBe(1);
  });

  test('retry: a handler failed (no wait), a RetryLaterError (its wait), no subscriber here (a rolling deploy)', async () => {
    const { catalog, pipeline, message } = setup();
    catalog.subscribe('flaky', () => {
      throw new Error('database is down');
    }, undefined);
    catalog.subscribe('later', () => {
      throw new RetryLaterError(30, 'rate limited');
    }, undefined);
    expect(await pipeline.receive(message(structuredEvent('flaky', {})))).toEqual(
      expect.objectContaining({ kind: 'retry', reason: 'handler_failed', message: '1 of 1 handlers failed; retry later' }),
    );
    expect(await pipeline.receive(message(structuredEvent('later', {})))).toEqual(
      expect.objectContaining({ kind: 'retry', reason: 'retry_later', message: 'rate limited', afterMs: 30_000 }),
    );
    const orphan = await pipeline.receive(message(structuredEvent('nobody-listens', {})));
    expect(orphan).toEqual(expect.objectContaining({ kind: 'retry', reason: 'no_subscriber' }));
    expect(orphan).not.toHaveProperty('afterMs');
  });

  test('reject: a bad signature, data failing the schema, a NonRetryableError; no handler runs for the first two', async () => {
    const { catalog, pipeline, message } = setup();
    let runs = 0;
    catalog.subscribe('user-created', () => void (runs += 1), Schema);
    catalog.subscribe('picky', () => {
      throw new NonRetryableError('unsupported country', { status: 409 });
    }, undefined);
    const event = structuredEvent('user-created', { user_id: 'u_1' });
    const tampered = message(event);
    tampered.body = Buffer.from(tampered.body.toString().replace('u_1', 'u_2'));
    expect(await pipeline.receive(tampered)).toEqual({ kind: 'reject', reason: 'invalid_signature', message: 'no webhook-signature matches' });
    expect(await pipeline.receive(message(structuredEvent('user-created', { user_id: 42 })))).toEqual(
      expect.objectContaining({ kind: 'reject', reason: 'invalid_data' }),
    );
    expect(runs).toBe(0);
    const rejected = (await pipeline.receive(message(structuredEvent('picky', {})))) as Verdict;
    expect(rejected).toEqual(expect.objectContaining({ kind: 'reject', reason: 'rejected_by_handler', message: 'unsupported country' }));
    expect(statusOf(rejected)).toBe(409); // the HTTP intake answers the status the handler chose
  });

  test('unavailable: a closing pipeline takes nothing new, and its close awaits the handlers in flight', async () => {
    const { catalog, pipeline, message } = setup();
    let release!: () => void;
    const running = new Promise<void>((resolve) => (release = resolve));
    let finished = false;
    catalog.subscribe('slow', async () => {
      await running;
      finished = true;
    }, undefined);
    const inFlight = pipeline.receive(message(structuredEvent('slow', {})));
    const closed = pipeline.close(Date.now() + 60_000);
    expect(await pipeline.receive(message(structuredEvent('slow', {})))).toEqual(
      expect.objectContaining({ kind: 'unavailable', reason: 'shutting_down', afterMs: 5000 }),
    );
    release();
    await closed;
    expect(finished).toBe(true);
    expect(await inFlight).toEqual(expect.objectContaining({ kind: 'done' }));
  });

  test('the timestamp window is the caller’s: off for broker receipt, where a message may wait in its queue for hours', async () => {
    const { catalog, pipeline, message } = setup();
    catalog.subscribe('user-created', () => undefined, undefined);
    const old = () => message(structuredEvent('user-created', {}), new Date(Date.now() - 3 * 3600_000));
    expect(await pipeline.receive(old())).toEqual(expect.objectContaining({ kind: 'reject', reason: 'invalid_signature' }));
    expect(await pipeline.receive(old(), { checkTimestamp: false })).toEqual(expect.objectContaining({ kind: 'done' }));
  });

  test('a batch: one verdict per item, in order, with its id', async () => {
    const { secret, catalog, pipeline } = setup();
    catalog.subscribe('user-created', () => undefined, Schema);
    const ok = structuredEvent('user-created', { user_id: 'u_1' });
    const invalid = structuredEvent('user-created', { user_id: 1 });
    const { headers, body } = signedBatch(secret, [ok, invalid, { id: 'x-1', specversion: '0.3' }]);
    expect(await pipeline.receive({ headers, body: Buffer.from(body) })).toEqual([
      { kind: 'done', id: ok.id },
      expect.objectContaining({ kind: 'reject', id: invalid.id, reason: 'invalid_data' }),
      expect.objectContaining({ kind: 'reject', id: 'x-1', reason: 'malformed_event' }),
    ]);
  });
});

describe('brokerStep: a verdict settled on a broker (RabbitMQ and Kafka alike)', () => {
  const policy = { maxAttempts: 3, retryDelaysMs: [1000, 5000] };

  test('done and duplicate ack; unavailable gives the message back', () => {
    expect(brokerStep({ kind: 'done' }, 1, policy)).toEqual({ step: 'ack' });
    expect(brokerStep({ kind: 'duplicate' }, 1, policy)).toEqual({ step: 'ack' });
    expect(brokerStep({ kind: 'unavailable', reason: 'shutting_down', message: 'm', afterMs: 5000 }, 1, policy)).toEqual({ step: 'give-back' });
  });

  test('retry waits the verdict’s wait, else the schedule’s; past maxAttempts it is dead-lettered, saying so', () => {
    const failed: Verdict = { kind: 'retry', reason: 'handler_failed', message: 'boom' };
    expect(brokerStep(failed, 1, policy)).toEqual({ step: 'retry', reason: 'handler_failed', afterMs: 1000 });
    expect(brokerStep(failed, 2, policy)).toEqual({ step: 'retry', reason: 'handler_failed', afterMs: 5000 });
    expect(brokerStep({ ...failed, afterMs: 30_000 }, 2, policy)).toEqual({ step: 'retry', reason: 'handler_failed', afterMs: 30_000 });
    expect(brokerStep(failed, 3, policy)).toEqual({ step: 'dead-letter', reason: 'handler_failed', message: 'gave up after 3 attempts: boom' });
  });

  test('reject is dead-lettered at once, with its reason', () => {
    expect(brokerStep({ kind: 'reject', reason: 'invalid_signature', message: 'no match' }, 1, policy)).toEqual({
      step: 'dead-letter',
      reason: 'invalid_signature',
      message: 'no match',
    });
  });

  test('a batch body is settled by its worst verdict', () => {
    const verdicts: Verdict[] = [{ kind: 'done' }, { kind: 'reject', reason: 'invalid_data', message: 'bad' }, { kind: 'retry', reason: 'handler_failed', message: 'x' }];
    expect(brokerStep(verdicts, 1, policy)).toEqual({ step: 'retry', reason: 'handler_failed', afterMs: 1000 });
    expect(brokerStep([{ kind: 'done' }, { kind: 'duplicate' }], 1, policy)).toEqual({ step: 'ack' });
  });

  test('batchSteps: a batch whose events agree is settled whole; one whose events part ways, event by event', () => {
    const failed: Verdict = { kind: 'retry', reason: 'handler_failed', message: 'x' };
    const refused: Verdict = { kind: 'reject', reason: 'invalid_data', message: 'bad' };
    const stopping: Verdict = { kind: 'unavailable', reason: 'shutting_down', message: 'm' };
    expect(batchSteps([{ kind: 'done' }, { kind: 'duplicate' }], 1, policy)).toEqual({ step: 'ack' });
    expect(batchSteps([failed, { ...failed, afterMs: 30_000 }], 1, policy)).toEqual({ step: 'retry', reason: 'handler_failed', afterMs: 1000 });
    expect(batchSteps([{ kind: 'done' }, failed, stopping], 1, policy)).toEqual({ step: 'give-back' });
    expect(batchSteps([{ kind: 'done' }, refused, failed], 1, policy)).toEqual([
      { step: 'ack' },
      { step: 'dead-letter', reason: 'invalid_data', message: 'bad' },
      { step: 'retry', reason: 'handler_failed', afterMs: 1000 },
    ]);
    // Past maxAttempts, the events still failing are dead-lettered each on its own.
    expect(batchSteps([{ kind: 'duplicate' }, failed], 3, policy)).toEqual([
      { step: 'ack' },
      { step: 'dead-letter', reason: 'handler_failed', message: 'gave up after 3 attempts: x' },
    ]);
    expect(batchSteps([failed, failed], 3, policy)).toEqual([
      { step: 'dead-letter', reason: 'handler_failed', message: 'gave up after 3 attempts: x' },
      { step: 'dead-letter', reason: 'handler_failed', message: 'gave up after 3 attempts: x' },
    ]);
  });
});

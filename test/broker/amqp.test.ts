import { randomUUID } from 'node:crypto';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import amqplib from 'amqplib';
import { openBrokerOperator } from '../../src/backends/broker-link.js';
import { DEFAULTS } from '../../src/defaults.js';
import { main } from '../../src/cli.js';
import {
  createEventBus,
  type EventBus,
  NonRetryableError,
  RetryLaterError,
} from '../../src/index.js';
import { createVhost, describeWithBroker, takeBrokerTurns, type TestVhost } from '../helpers/broker.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { createCapturingLogger, quietLogger } from '../helpers/logger.js';
import { newSecret, structuredEvent, webhookHeaders } from '../helpers/signing.js';
import { parseSecret, verify } from '../../src/protocol/signature.js';
import { tempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait.js';

const secret = newSecret();

describeWithBroker('RabbitMQ transport (real broker)', () => {
  takeBrokerTurns();
  let vhost: TestVhost;
  const cleanups = cleanupAfterEach();
  let prefixCounter = 0;
  /** A fresh queue prefix per test: the tests of this file share one vhost. */
  let prefix = '';

  beforeAll(() => {
    vhost = createVhost('amqp');
  });
  afterAll(() => vhost?.remove());
  beforeEach(() => {
    prefixCounter += 1;
    prefix = `t${prefixCounter}.`;
  });

  function bus(service: string, extra: Parameters<typeof createEventBus>[0] = {}): EventBus {
    const b = createEventBus({
      service,
      secret,
      logger: quietLogger(),
      inbox: { volatile: true },
      ...extra,
      broker: { url: vhost.url, prefix, retryDelaysMs: [100, 200], ...(extra.broker as object | undefined) },
    });
    cleanups.push(() => b.close());
    return b;
  }

  /** Reads every message of `queue` (removing them): content and headers. */
  async function drain(queue: string): Promise<Array<{ body: string; headers: Record<string, unknown>; contentType?: string }>> {
    const conn = await amqplib.connect(vhost.url);
    try {
      const ch = await conn.createChannel();
      const out = [];
      for (;;) {
        const m = await ch.get(queue, { noAck: true });
        if (m === false) break;
        out.push({ body: m.content.toString(), headers: m.properties.headers ?? {}, contentType: m.properties.contentType as string | undefined });
      }
      return out;
    } finally {
      await conn.close();
    }
  }

  it('the sender declares the target\'s queue: an event published before the target ever consumed waits in it', async () => {
    const users = bus('users').declareEvent('user-created', ['late']);
    await users.emit('user-created', { n: 1 });
    await waitFor(async () => (await users.outboxStats()).pending === 0, { what: 'the publish to be confirmed' });
    expect(await vhost.messageCount(`${prefix}late`)).toBe(1);
  });
  it('a negative confirm (queue full) is a retry, never delivered: the event waits in the outbox and goes out later', async () => {
    const capture = createCapturingLogger('debug');
    const users = bus('users', { logger: capture.logger, redelivery: { baseDelayMs: 50, probeMaxDelayMs: 200 } }).declareEvent('user-created', ['full']);
    await vhost.setPolicy(`${prefix}full-max`, `^${prefix.replace('.', '\\.')}full$`, { 'max-length': 1 });
    try {
      // A quorum queue rejects publishes once it is over its limit: the first two are taken.
      const taken = [(await users.emit('user-created', { n: 1 })).id, (await users.emit('user-created', { n: 2 })).id];
      await waitFor(async () => (await users.outboxStats()).pending === 0, { what: 'the first two confirmed' });
      const third = await users.emit('user-created', { n: 3 });
      await waitFor(() => capture.withMessage('delivery attempt failed').length > 0, { what: 'a nack' });
      const [failure] = capture.withMessage('delivery attempt failed') as unknown as Array<{ error: string; eventId: string }>;
      expect(failure).toMatchObject({ eventId: third.id, error: 'message nacked' });
      expect((await users.outboxStats()).pending).toBe(1);
      expect(await vhost.messageCount(`${prefix}full`)).toBe(2);

      await vhost.clearPolicy(`${prefix}full-max`);
      const received: string[] = [];
      const full = bus('full');
      full.subscribeTo('user-created', (_d, event) => void received.push(event.id));
      await waitFor(() => received.length === 3, { timeoutMs: 10_000, what: 'all delivered once the queue has room' });
      expect(received.sort()).toEqual([...taken, third.id].sort());
    } finally {
      await vhost.clearPolicy(`${prefix}full-max`).catch(() => undefined);
    }
  });

  it('a returned (unroutable) message is a retry; the queue is declared again and the event delivered', async () => {
    const capture = createCapturingLogger('debug');
    const users = bus('users', { logger: capture.logger, redelivery: { baseDelayMs: 50, probeMaxDelayMs: 200 } }).declareEvent('user-created', ['vanishing']);
    await users.emit('user-created', { n: 1 });
    await waitFor(async () => (await users.outboxStats()).pending === 0, { what: 'the first publish' });
    const conn = await amqplib.connect(vhost.url);
    cleanups.push(() => conn.close());
    await (await conn.createChannel()).deleteQueue(`${prefix}vanishing`);
    const { id } = await users.emit('user-created', { n: 2 });
    await waitFor(async () => (await users.outboxStats()).pending === 0, { what: 'the retry to be confirmed' });
    const failures = capture.withMessage('delivery attempt failed') as unknown as Array<{ error: string; eventId: string }>;
    expect(failures.map((f) => [f.eventId, f.error])).toEqual([[id, `unroutable: the broker has no queue "${prefix}vanishing"`]]);
    const [message] = await drain(`${prefix}vanishing`);
    expect(JSON.parse(message!.body).id).toBe(id);
  });

  it('puts the structured CloudEvent and the AMQP binding headers on the wire, signed', async () => {
    const users = bus('users').declareEvent('user-created', ['wire']);
    const { id } = await users.emit('user-created', { n: 7 });
    await waitFor(async () => (await users.outboxStats()).pending === 0, { what: 'the publish' });
    const [message] = await drain(`${prefix}wire`);
    expect(message!.contentType).toBe('application/cloudevents+json; charset=utf-8');
    expect(JSON.parse(message!.body)).toMatchObject({ specversion: '1.0', id, source: 'users', type: 'user-created', data: { n: 7 } });
    expect(message!.headers).toMatchObject({
      cloudEvents_id: id,
      cloudEvents_type: 'user-created',
      cloudEvents_source: 'users',
      cloudEvents_specversion: '1.0',
      'webhook-id': id,
    });
    expect(message!.headers.cloudEvents_time).toEqual(JSON.parse(message!.body).time);
    expect(String(message!.headers['webhook-signature'])).toMatch(/^v1,/);
  });

  it('events due together go as one message: a CloudEvents batch of their exact bodies, signed once over it', async () => {
    const users = bus('users', { concurrency: 1, batch: { lingerMs: 50 } }).declareEvent('user-created', ['wire']).declareEvent('user-deleted', ['wire']);
    const ids = await Promise.all([1, 2, 3, 4, 5].map(async (n) => (await users.emit(n === 3 ? 'user-deleted' : 'user-created', { n })).id));
    await waitFor(async () => (await users.outboxStats()).pending === 0, { what: 'the publish' });
    const messages = await drain(`${prefix}wire`);
    expect(messages).toHaveLength(1);
    const [message] = messages;
    expect(message!.contentType).toBe('application/cloudevents-batch+json; charset=utf-8');
    const events = JSON.parse(message!.body) as Array<Record<string, unknown>>;
    expect(events.map((event) => event.id)).toEqual(ids);
    expect(events.map((event) => event.data)).toEqual([1, 2, 3, 4, 5].map((n) => ({ n })));
    const { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': signature } = message!.headers;
    expect(String(id)).toMatch(/^batch_/);
    const input = { id: String(id), timestamp: String(timestamp), signature: String(signature), body: Buffer.from(message!.body) };
    expect(verify([parseSecret(secret)], input, 60)).toBeUndefined();
    expect(verify([parseSecret(newSecret())], input, 60)).toBe('no-matching-signature');
    // One event's attribute headers would misdescribe a batch.
    expect(Object.keys(message!.headers).filter((name) => name.startsWith('cloudEvents_'))).toEqual([]);
  });

  it('a failing handler waits in the wait queue of each attempt (retryDelaysMs), never in the dead-letter queue', async () => {
    const capture = createCapturingLogger('info');
    const users = bus('users').declareEvent('user-created', ['flaky']);
    const flaky = bus('flaky', { logger: capture.logger });
    let calls = 0;
    flaky.subscribeTo('user-created', () => {
      calls += 1;
      if (calls < 3) throw new Error('database unavailable');
    });
    await flaky.start();
    await users.emit('user-created', { n: 1 });
    await waitFor(() => capture.withMessage('event received').length === 1, { what: 'success after retries' });
    expect(calls).toBe(3);
    const retries = capture.withMessage('event will be retried from the broker');
    expect(retries.map((r) => (r as unknown as { attempt: number }).attempt)).toEqual([1, 2]);
    expect(retries.map((r) => (r as unknown as { retryInMs: number }).retryInMs)).toEqual([100, 200]);
    expect(await vhost.messageCount(`${prefix}flaky.dlq`)).toBe(0);
  });

  it('dead-letters after maxAttempts with the reason; a NonRetryableError at once', async () => {
    const users = bus('users').declareEvent('always-fails', ['picky']).declareEvent('refused', ['picky']);
    const picky = bus('picky', { broker: { url: vhost.url, maxAttempts: 3 } });
    let failing = 0;
    let refusing = 0;
    picky.subscribeTo('always-fails', () => {
      failing += 1;
      throw new Error('boom');
    });
    picky.subscribeTo('refused', () => {
      refusing += 1;
      throw new NonRetryableError('unsupported country');
    });
    await picky.start();
    const a = await users.emit('always-fails', {});
    const b = await users.emit('refused', {});
    await waitFor(async () => (await vhost.messageCount(`${prefix}picky.dlq`)) === 2, { what: 'two dead letters' });
    expect(failing).toBe(3);
    expect(refusing).toBe(1);
    const dead = await drain(`${prefix}picky.dlq`);
    const byId = new Map(dead.map((d) => [JSON.parse(d.body).id as string, d]));
    expect(byId.get(a.id)!.headers).toMatchObject({ 'events-dead-reason': 'handler_failed', 'events-attempts': 3, 'events-dead-queue': `${prefix}picky` });
    expect(String(byId.get(a.id)!.headers['events-dead-error'])).toContain('gave up after 3 attempts');
    expect(byId.get(b.id)!.headers).toMatchObject({ 'events-dead-reason': 'rejected_by_handler', 'events-dead-error': 'unsupported country' });
    // Still a valid signed message: it can be replayed as is.
    expect(byId.get(b.id)!.headers['webhook-signature']).toBeDefined();
  });

  it('dead-letters a poison message (bad signature, or not JSON) with the reason and never runs a handler; what it claims is never logged or listed as verified', async () => {
    const capture = createCapturingLogger('error');
    const target = bus('guarded', { logger: capture.logger });
    let calls = 0;
    target.subscribeTo('user-created', () => void (calls += 1));
    await target.start();
    const conn = await amqplib.connect(vhost.url);
    cleanups.push(() => conn.close());
    const ch = await conn.createConfirmChannel();
    const forged = structuredEvent('user-created', { n: 1 });
    const forgedBody = JSON.stringify(forged);
    ch.publish('', `${prefix}guarded`, Buffer.from(forgedBody), {
      contentType: 'application/cloudevents+json',
      headers: webhookHeaders(newSecret(), String(forged.id), forgedBody), // another secret
    });
    const garbled = 'not json';
    ch.publish('', `${prefix}guarded`, Buffer.from(garbled), {
      contentType: 'application/cloudevents+json',
      headers: webhookHeaders(secret, 'x1', garbled),
    });
    // One unsigned byte with forged properties (issue 16 item 23).
    ch.publish('', `${prefix}guarded`, Buffer.from('x'), { messageId: 'FORGED-ID', type: 'user-created', appId: 'users' });
    await ch.waitForConfirms();
    await waitFor(async () => (await vhost.messageCount(`${prefix}guarded.dlq`)) === 3, { what: 'three dead letters' });
    const listed = await target.deadLetters();
    expect(listed.map((l) => [l.reason, l.eventId, l.unverified]).sort()).toEqual([
      ['invalid_signature', undefined, undefined],
      ['invalid_signature', undefined, { eventId: forged.id, type: 'user-created', source: 'users' }],
      ['malformed_json', undefined, undefined],
    ]);
    const lines = capture.withMessage('event dead-lettered');
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line).not.toHaveProperty('eventId');
    expect(capture.lines.join('\n')).not.toContain('FORGED-ID');
    const reasons = (await drain(`${prefix}guarded.dlq`)).map((d) => d.headers['events-dead-reason']).sort();
    expect(reasons).toEqual(['invalid_signature', 'invalid_signature', 'malformed_json']);
    expect(calls).toBe(0);
    expect(await vhost.messageCount(`${prefix}guarded`)).toBe(0);
  });

  it('accepts a message signed long ago (it waited in the queue), which HTTP receipt would refuse', async () => {
    const target = bus('patient');
    const received: string[] = [];
    target.subscribeTo('user-created', (_d, event) => void received.push(event.id));
    await target.start();
    const conn = await amqplib.connect(vhost.url);
    cleanups.push(() => conn.close());
    const ch = await conn.createConfirmChannel();
    const event = structuredEvent('user-created', { n: 1 });
    const body = JSON.stringify(event);
    const hourAgo = new Date(Date.now() - 3_600_000);
    ch.publish('', `${prefix}patient`, Buffer.from(body), {
      contentType: 'application/cloudevents+json',
      headers: webhookHeaders(secret, String(event.id), body, hourAgo),
    });
    await ch.waitForConfirms();
    await waitFor(() => received.length === 1, { what: 'the old message' });
    expect(received).toEqual([event.id]);
    const http = await target.handle({ headers: { 'content-type': 'application/cloudevents+json', ...webhookHeaders(secret, String(event.id), body, hourAgo) }, body: Buffer.from(body) });
    expect(http.status).toBe(401);
  });

  it('an event no handler here subscribes to is retried, not dead-lettered (a rolling deploy), and handled once subscribed', async () => {
    const capture = createCapturingLogger('info');
    const users = bus('users').declareEvent('user-created', ['rolling']);
    const rolling = bus('rolling', { logger: capture.logger });
    rolling.subscribeTo('something-else', () => undefined);
    await rolling.start();
    const { id } = await users.emit('user-created', {});
    await waitFor(() => capture.withMessage('event will be retried from the broker').length > 0, { what: 'a retry' });
    expect(capture.withMessage('event will be retried from the broker')[0]).toMatchObject({ reason: 'no_subscriber' });
    const received: string[] = [];
    rolling.subscribeTo('user-created', (_d, event) => void received.push(event.id));
    await waitFor(() => received.length === 1, { what: 'handled after subscribing' });
    expect(received).toEqual([id]);
    expect(await vhost.messageCount(`${prefix}rolling.dlq`)).toBe(0);
  });

  it('RetryLaterError(n) waits in the shortest wait queue of at least n seconds', async () => {
    const capture = createCapturingLogger('info');
    const users = bus('users').declareEvent('user-created', ['later']);
    const later = bus('later', { logger: capture.logger, broker: { url: vhost.url, retryDelaysMs: [50, 1_000, 60_000] } });
    let calls = 0;
    later.subscribeTo('user-created', () => {
      calls += 1;
      if (calls === 1) throw new RetryLaterError(1, 'rate limited');
    });
    await later.start();
    await users.emit('user-created', {});
    await waitFor(() => calls === 2, { what: 'the second try' });
    const [retry] = capture.withMessage('event will be retried from the broker');
    expect((retry as unknown as { retryInMs: number }).retryInMs).toBe(1_000);
  });

  it('survives a dropped connection mid-stream: 0 lost, outage and recovery logged once each', async () => {
    const senderLog = createCapturingLogger('info');
    const users = bus('users', { logger: senderLog.logger, broker: { url: vhost.url, reconnectBaseDelayMs: 50 } }).declareEvent('user-created', ['sturdy']);
    const handled = new Set<string>();
    for (let i = 0; i < 2; i += 1) {
      const b = bus('sturdy', { concurrency: 8, broker: { url: vhost.url, reconnectBaseDelayMs: 50 } });
      b.subscribeTo('user-created', (_d, event) => void handled.add(event.id));
      await b.start();
    }
    const ids: string[] = [];
    for (let n = 0; n < 150; n += 1) ids.push((await users.emit('user-created', { n })).id);
    await waitFor(() => handled.size >= 30, { what: 'some handled' });
    // Keep emitting while rabbitmqctl drops the connections (it takes a second or two), and after.
    let dropped = false;
    const dropping = vhost.dropConnections().then(() => (dropped = true));
    for (let n = 150; !dropped || n < 300; n += 1) {
      ids.push((await users.emit('user-created', { n })).id);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await dropping;
    for (let n = 0; n < 50; n += 1) ids.push((await users.emit('user-created', { after: n })).id);
    await waitFor(() => ids.every((id) => handled.has(id)), { timeoutMs: 20_000, what: 'every event after the drop' });
    await waitFor(() => senderLog.withMessage('broker connection restored').length > 0, { what: 'the recovery line' });
    // A publish whose confirm the drop lost is sent again (the consumer dedupes it): wait for its confirm.
    await waitFor(async () => (await users.outboxStats()).pending === 0, { timeoutMs: 20_000, what: 'the outbox to drain' });
    expect(await users.outboxStats()).toMatchObject({ pending: 0, deadLetters: 0 });
    expect(senderLog.withMessage('broker connection lost; reconnecting')).toHaveLength(1);
    expect(senderLog.withMessage('broker connection restored')).toHaveLength(1);
  });

  it('lists, replays and discards the dead letters of a service queue by id (operator and CLI), leaving the rest in place', async () => {
    const users = bus('users').declareEvent('user-created', ['fixable']);
    const fixable = bus('fixable');
    let broken = true;
    const handled: string[] = [];
    fixable.subscribeTo('user-created', (_d, event) => {
      if (broken) throw new NonRetryableError('not yet');
      handled.push(event.id);
    });
    await fixable.start();
    const a = await users.emit('user-created', { n: 1 });
    const b = await users.emit('user-created', { n: 2 });
    const c = await users.emit('user-created', { n: 3 });
    await waitFor(async () => (await vhost.messageCount(`${prefix}fixable.dlq`)) === 3, { what: 'three dead letters' });

    const operator = openBrokerOperator({ broker: vhost.url, service: 'fixable', prefix });
    cleanups.push(() => operator.close());
    const letters = await operator.deadLetters();
    expect(letters.map((d) => d.eventId).sort()).toEqual([a.id, b.id, c.id].sort());
    expect(letters[0]).toMatchObject({ kept: 'queue', type: 'user-created', source: 'users', target: 'fixable', reason: 'rejected_by_handler', error: 'not yet', attempts: 1 });
    const idOf = (eventId: string): string => letters.find((l) => l.eventId === eventId)!.id;
    // Ids the library assigned as it dead-lettered (not the event ids), unique.
    expect(new Set(letters.map((l) => l.id)).size).toBe(3);
    for (const l of letters) expect(l.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(letters.map((l) => l.id)).not.toContain(a.id);
    // Paged as far as the broker allows: a page of two, then the last one; past the read window, truncated.
    const page1 = await operator.deadLetterPage(undefined, { limit: 2 });
    const page2 = await operator.deadLetterPage(undefined, { limit: 2, cursor: page1.next });
    expect(page1.items).toHaveLength(2);
    expect(page1.truncated).toBeUndefined();
    expect(page2.next).toBeUndefined();
    expect([...page1.items, ...page2.items].map((l) => l.id).sort()).toEqual(letters.map((l) => l.id).sort());
    const window = DEFAULTS.operator as { brokerReadWindow: number };
    window.brokerReadWindow = 2;
    try {
      const cut = await operator.deadLetterPage(undefined, { limit: 10 });
      expect(cut.items).toHaveLength(2);
      expect(cut.truncated).toBe(true);
    } finally {
      window.brokerReadWindow = 1_000;
    }
    await waitFor(async () => (await vhost.messageCount(`${prefix}fixable.dlq`)) === 3, { what: 'listing to leave them there' });
    expect(await operator.stats()).toEqual({ durable: true, pending: 0, deadLetters: 3, targets: { fixable: { pending: 0, deadLetters: 3 } } });
    // The bus lists its own queue's dead letters beside its outbox's.
    expect((await fixable.deadLetters()).map((d) => d.id).sort()).toEqual(letters.map((d) => d.id).sort());

    const out: string[] = [];
    const io = { out: (t: string) => void out.push(t), err: (t: string) => void out.push(t) };
    const env = { EVENTS_BROKER_URL: vhost.url, EVENTS_BROKER_PREFIX: prefix };
    expect(await main(['dead-letters', '--service', 'fixable'], env, io)).toBe(0);
    expect(out.join('')).toContain(a.id);
    expect(out.join('')).toContain('rejected_by_handler');

    broken = false;
    expect(await operator.replay([idOf(a.id)])).toBe(1);
    await waitFor(() => handled.length === 1, { what: 'the replayed one handled' });
    expect(handled).toEqual([a.id]);
    // The others keep their ids.
    expect((await operator.deadLetters()).map((d) => d.id).sort()).toEqual([idOf(b.id), idOf(c.id)].sort());

    expect(await operator.discard([idOf(b.id)])).toBe(1);
    expect(await operator.discard([idOf(b.id)])).toBe(0);
    expect((await operator.deadLetters()).map((d) => d.eventId)).toEqual([c.id]);

    out.length = 0;
    expect(await main(['replay', '--all', '--service', 'fixable', '--broker', vhost.url], { EVENTS_BROKER_PREFIX: prefix }, io)).toBe(0);
    expect(out.join('')).toContain('replayed 1 dead letter');
    await waitFor(() => handled.length === 2, { what: 'the other handled' });
    expect(handled).toEqual([a.id, c.id]);
    expect(await vhost.messageCount(`${prefix}fixable.dlq`)).toBe(0);

    out.length = 0;
    expect(await main(['dead-letters', '--service', 'nobody'], env, io)).toBe(2);
    expect(out.join('')).toContain('no dead-letter queue');
    const nobody = openBrokerOperator({ broker: vhost.url, service: 'nobody', prefix });
    cleanups.push(() => nobody.close());
    await expect(nobody.deadLetters()).rejects.toThrow('no dead-letter queue');
  });

  it('without a service, the operator finds every service under the prefix (the registry); ids are never the sender\'s', async () => {
    const users = bus('users').declareEvent('user-created', ['alpha', 'beta']);
    for (const name of ['alpha', 'beta']) {
      const b = bus(name);
      b.subscribeTo('user-created', () => {
        throw new NonRetryableError(`${name} refuses`);
      });
      await b.start();
    }
    // A second instance: the registry still holds each name once. (The services of the earlier
    // tests of this file, under other prefixes, are not listed.)
    await bus('beta').start();
    const emitted = await users.emit('user-created', { n: 1 });

    const conn = await amqplib.connect(vhost.url);
    cleanups.push(() => conn.close());
    const ch = await conn.createConfirmChannel();
    // A sender picks the dead-letter id header (and a reason) on a message the consumer dead-letters…
    const forged = structuredEvent('user-created', { n: 2 });
    const forgedBody = JSON.stringify(forged);
    ch.publish('', `${prefix}alpha`, Buffer.from(forgedBody), {
      contentType: 'application/cloudevents+json',
      messageId: 'chosen',
      headers: { ...webhookHeaders(newSecret(), String(forged.id), forgedBody), 'events-dead-letter-id': 'chosen', 'events-dead-reason': 'forged' },
    });
    // …and on one the broker dead-letters itself (as it does past x-delivery-limit; here a TTL).
    await ch.assertQueue(`${prefix}expiring`, { arguments: { 'x-message-ttl': 1, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': `${prefix}beta.dlq` } });
    ch.publish('', `${prefix}expiring`, Buffer.from(forgedBody), {
      contentType: 'application/cloudevents+json',
      headers: { 'events-dead-letter-id': 'chosen', 'events-dead-reason': 'forged' },
    });
    await ch.waitForConfirms();
    await waitFor(async () => (await vhost.messageCount(`${prefix}alpha.dlq`)) === 2 && (await vhost.messageCount(`${prefix}beta.dlq`)) === 2, {
      what: 'two dead letters each',
    });

    const operator = openBrokerOperator({ broker: vhost.url, prefix });
    cleanups.push(() => operator.close());
    const letters = await operator.deadLetters();
    expect(letters.map((l) => l.target).sort()).toEqual(['alpha', 'alpha', 'beta', 'beta']);
    expect(letters.map((l) => l.id)).not.toContain('chosen');
    expect(new Set(letters.map((l) => l.id)).size).toBe(4);
    expect(letters.map((l) => l.reason).sort()).toEqual(['expired', 'invalid_signature', 'rejected_by_handler', 'rejected_by_handler']);
    // Identity from the body, not from the message's properties or headers; and neither letter's
    // signature is known good (a bad one; the broker's own dead-lettering), so only as unverified.
    const unverified = letters.filter((l) => l.unverified?.eventId === String(forged.id));
    expect(unverified.map((l) => [l.target, l.eventId, l.unverified?.source]).sort()).toEqual([
      ['alpha', undefined, 'users'],
      ['beta', undefined, 'users'],
    ]);
    // Stable: listed again, the same ids.
    expect((await operator.deadLetters()).map((l) => l.id)).toEqual(letters.map((l) => l.id));
    expect(await operator.stats()).toEqual({
      durable: true,
      pending: 0,
      deadLetters: 4,
      targets: { alpha: { pending: 0, deadLetters: 2 }, beta: { pending: 0, deadLetters: 2 } },
    });
    expect(await operator.deadLetters({ target: 'beta', eventId: emitted.id })).toHaveLength(1);

    const expired = letters.find((l) => l.reason === 'expired')!;
    expect(await operator.discard(['chosen'])).toBe(0);
    expect(await operator.discard([expired.id])).toBe(1);
    expect(await operator.discard({ target: 'alpha', eventId: String(forged.id) })).toBe(0);
    expect(await operator.discard([unverified.find((l) => l.target === 'alpha')!.id])).toBe(1);
    expect((await operator.deadLetters()).map((l) => [l.target, l.eventId]).sort()).toEqual([
      ['alpha', emitted.id],
      ['beta', emitted.id],
    ]);
    // Three consumers started, two names recorded.
    await operator.close();
    await waitFor(async () => (await vhost.messageCount(`${prefix}events-library.services`)) === 2, { what: 'the registry given back' });
  });

  it('two instances as child processes share the queue: each event handled once', async () => {
    const dir = tempDir('amqp-children');
    cleanups.push(() => dir.remove());
    const log = dir.file('handled.log');
    writeFileSync(log, '');
    const children: ChildProcess[] = [];
    cleanups.push(() => children.forEach((c) => c.kill('SIGKILL')));
    const ready: Array<Promise<void>> = [];
    for (let i = 0; i < 2; i += 1) {
      const child = spawn(process.execPath, ['-r', 'tsx/cjs', path.join(__dirname, '../fixtures/amqp-instance.ts')], {
        cwd: path.resolve(__dirname, '../..'),
        env: {
          ...process.env,
          EVENTS_BROKER_URL: vhost.url,
          EVENTS_BROKER_PREFIX: prefix,
          EVENTS_SERVICE_NAME: 'workers',
          EVENTS_SECRET: secret,
          EVENTS_INBOX_VOLATILE: 'true',
          EVENTS_LOG_LEVEL: 'error',
          FIXTURE_LOG: log,
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.push(child);
      ready.push(
        new Promise((resolve) => {
          let out = '';
          child.stdout!.on('data', (chunk: Buffer) => {
            out += chunk.toString();
            if (out.includes('ready')) resolve();
          });
        }),
      );
    }
    await Promise.all(ready);
    const users = bus('users').declareEvent('user-created', ['workers']);
    const ids = new Set<string>();
    for (let n = 0; n < 100; n += 1) ids.add((await users.emit('user-created', { n, key: randomUUID() })).id);
    const lines = (): string[][] => readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' '));
    await waitFor(() => lines().length >= 100, { timeoutMs: 15_000, what: 'all handled by the children' });
    const handled = lines();
    expect(handled).toHaveLength(100);
    expect(new Set(handled.map(([id]) => id))).toEqual(ids);
    for (const child of children) child.kill('SIGTERM');
    await Promise.all(children.map((c) => new Promise((resolve) => (c.exitCode !== null ? resolve(null) : c.on('exit', resolve)))));
    expect(children.map((c) => c.exitCode)).toEqual([0, 0]);
  });
});

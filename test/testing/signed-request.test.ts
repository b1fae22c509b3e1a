import request from 'supertest';
import { Webhook } from 'standardwebhooks';
import { createPaymentsService } from '../../examples/payments.js';
import { createEventBus, ConfigError } from '../../src/index.js';
import { recordEmits, signedRequest } from '../../src/testing/index.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { quietLogger } from '../helpers/logger.js';

const cleanups = cleanupAfterEach();
const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const other = 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD';

describe('signedRequest', () => {
  test('builds the exact bytes and headers a sender signs: a fixed signature, verified by the standardwebhooks library', () => {
    const req = signedRequest(
      'user-created',
      { user_id: 'u1' },
      { secret, source: 'users', id: 'evt-1', time: '2026-01-01T00:00:00.000Z', timestamp: 1767225600 },
    );
    expect(req.body).toBe(
      '{"specversion":"1.0","id":"evt-1","source":"users","type":"user-created","time":"2026-01-01T00:00:00.000Z","datacontenttype":"application/json","data":{"user_id":"u1"}}',
    );
    expect(req.headers).toEqual({
      'content-type': 'application/cloudevents+json; charset=utf-8',
      'webhook-id': 'evt-1',
      'webhook-timestamp': '1767225600',
      'webhook-signature': 'v1,Uk+n28fft7XBKccuiiT0x4sRMoFS6J3lnaIC2xZPDUQ=',
    });
    // The same value from the reference implementation, not from our own signing code.
    expect(new Webhook(secret).sign('evt-1', new Date(1767225600 * 1000), req.body)).toBe(req.headers['webhook-signature']);
    const fresh = signedRequest('user-created', { user_id: 'u1' }, { secret });
    expect(new Webhook(secret).verify(fresh.body, fresh.headers)).toMatchObject({ type: 'user-created', source: 'test' });
  });

  test('signs with every secret given (rotation) and refuses a malformed one without echoing it', () => {
    const req = signedRequest('t', {}, { secret: [secret, other] });
    expect(req.headers['webhook-signature']!.split(' ')).toHaveLength(2);
    expect(new Webhook(other).verify(req.body, req.headers)).toBeTruthy();
    const error = (() => {
      try {
        signedRequest('t', {}, { secret: 'whsec_not base64!' });
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error!.message).not.toContain('not base64!');
  });

  test('supertest against the payments example: delivered, then duplicate, 400 for invalid data, 401 for another secret', async () => {
    const payments = createPaymentsService({ secret, logger: quietLogger() });
    cleanups.push(() => payments.bus.close());
    const data = { user_id: 'u1', email: 'ada@example.com' };

    const first = signedRequest('user-created', data, { secret, source: 'users' });
    const delivered = await request(payments.app).post('/events').set(first.headers).send(first.body).expect(200);
    expect(delivered.body).toEqual({ status: 'delivered', id: first.event.id });
    expect(payments.customers.get('u1')).toEqual({ email: 'ada@example.com' });

    // The same event again, signed afresh as a sender's retry is: handlers do not run twice.
    const again = signedRequest('user-created', data, { secret, source: 'users', id: first.event.id });
    await request(payments.app).post('/events').set(again.headers).send(again.body).expect(200, { status: 'duplicate', id: first.event.id });
    expect(payments.received.filter((line) => line.includes('welcome credit'))).toHaveLength(1);

    const invalid = signedRequest('user-created', { user_id: 'u2' }, { secret, source: 'users' });
    const refused = await request(payments.app).post('/events').set(invalid.headers).send(invalid.body).expect(400);
    expect(refused.body.error).toBe('invalid_data');

    const forged = signedRequest('user-created', { user_id: 'u3', email: 'eve@example.com' }, { secret: other, source: 'users' });
    await request(payments.app).post('/events').set(forged.headers).send(forged.body).expect(401);
    expect([...payments.customers.keys()]).toEqual(['u1']);
  });

  test('bus.handle takes it as is (Buffer.from(body)); an old timestamp is refused (401)', async () => {
    const bus = createEventBus({ service: 'payments', secret, logger: quietLogger() });
    cleanups.push(() => bus.close());
    const seen: unknown[] = [];
    bus.subscribeTo('user-created', (data) => void seen.push(data));

    const req = signedRequest('user-created', { user_id: 'u1' }, { secret });
    expect(await bus.handle({ headers: req.headers, body: Buffer.from(req.body) })).toMatchObject({ status: 200 });
    expect(seen).toEqual([{ user_id: 'u1' }]);

    const stale = signedRequest('user-created', { user_id: 'u2' }, { secret, timestamp: Math.floor(Date.now() / 1000) - 3600 });
    expect(await bus.handle({ headers: stale.headers, body: Buffer.from(stale.body) })).toMatchObject({ status: 401 });
    expect(seen).toHaveLength(1);
  });
});

describe('recordEmits', () => {
  test('records what a bus emitted (a JSON copy), by type; rejected emits are not recorded; one recorder per bus', async () => {
    const sent: string[] = [];
    const bus = createEventBus({
      service: 'users',
      secret,
      logger: quietLogger(),
      services: { payments: 'http://payments.invalid/events' },
      transport: { send: async (d) => (sent.push(d.eventId), { outcome: 'delivered', attempts: 1 }), close: async () => undefined },
    }).declareEvent('user-created', ['payments'], {
      schema: { type: 'object', required: ['user_id'], properties: { user_id: { type: 'string' } } } as const,
    });
    cleanups.push(() => bus.close());
    const recorder = recordEmits(bus);
    expect(recordEmits(bus)).toBe(recorder);

    const payload = { user_id: 'u1' };
    const receipt = await bus.emit('user-created', payload);
    payload.user_id = 'changed later';
    await expect(bus.emit('user-created', { user_id: 42 } as never)).rejects.toThrow();

    expect(recorder.emitted('user-created')).toHaveLength(1);
    expect(recorder.emitted('user-created')[0]).toEqual({ ...receipt, data: { user_id: 'u1' } });
    expect(recorder.emitted()).toHaveLength(1);
    recorder.clear();
    expect(recorder.emitted()).toEqual([]);
  });
});

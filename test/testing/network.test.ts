import net from 'node:net';
import { createOrdersService } from '../../examples/orders.js';
import { createPaymentsService } from '../../examples/payments.js';
import { createUsersService } from '../../examples/users.js';
import { NonRetryableError, RetryLaterError } from '../../src/index.js';
import { createTestNetwork, type TestNetwork } from '../../src/testing/index.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { createCapturingLogger, quietLogger } from '../helpers/logger.js';

/**
 * The test kit's in-process network: real buses, real receivers, no sockets. Every test here
 * runs with socket connects and server listens made to throw (and counted).
 */
const cleanups = cleanupAfterEach();
const sockets = { connects: 0, listens: 0 };
const originalConnect = net.Socket.prototype.connect;
const originalListen = net.Server.prototype.listen;

beforeAll(() => {
  net.Socket.prototype.connect = function connect(): never {
    sockets.connects += 1;
    throw new Error('the test kit opened a socket');
  } as typeof net.Socket.prototype.connect;
  net.Server.prototype.listen = function listen(): never {
    sockets.listens += 1;
    throw new Error('the test kit listened on a socket');
  } as typeof net.Server.prototype.listen;
});
afterAll(() => {
  net.Socket.prototype.connect = originalConnect;
  net.Server.prototype.listen = originalListen;
});

function network(options: Parameters<typeof createTestNetwork>[0] = {}): TestNetwork {
  const created = createTestNetwork({ logger: quietLogger(), ...options });
  cleanups.push(() => created.close());
  return created;
}

describe('test network', () => {
  test('drives the seed scenario of examples/ (users → payments, orders) with no socket opened', async () => {
    const net = network();
    const payments = createPaymentsService(net.options('payments'));
    const orders = createOrdersService(net.options('orders'));
    const users = createUsersService(net.options('users'));
    for (const service of [payments, orders, users]) net.add(service.bus);

    const ada = await users.bus.emit('user-created', { user_id: 'u1', email: 'ada@example.com', name: 'Ada' });
    await users.bus.emit('user-created', { user_id: 'u2', email: 'linus@example.com' });
    await users.bus.emit('user-deleted', { user_id: 'u1' });
    await net.settled();

    expect([...payments.customers.keys()]).toEqual(['u2']);
    expect(payments.received.filter((line) => line.includes('welcome credit'))).toHaveLength(2);
    expect(payments.received).toContain('user-deleted u1 → customer removed');
    expect([...orders.histories.keys()].sort()).toEqual(['u1', 'u2']);
    expect(orders.received[0]).toBe('user-created u1 from users → order history opened');
    expect(net.emitted('user-created')).toHaveLength(2);
    expect(net.emitted('user-created')[0]).toMatchObject({
      id: ada.id,
      source: 'users',
      targets: ['payments', 'orders'],
      data: { user_id: 'u1', email: 'ada@example.com', name: 'Ada' },
    });
    expect(net.emitted().map((e) => e.type)).toEqual(['user-created', 'user-created', 'user-deleted']);
    expect(await net.deadLetters()).toEqual([]);
    expect(sockets).toEqual({ connects: 0, listens: 0 });
  });

  test('a handler throwing NonRetryableError: its target dead-letters the event, the other target gets it', async () => {
    const net = network();
    const users = net.bus('users').declareEvent('user-created', ['payments', 'orders']);
    const orders: unknown[] = [];
    net.bus('payments').subscribeTo('user-created', () => {
      throw new NonRetryableError('unsupported country');
    });
    net.bus('orders').subscribeTo('user-created', (data) => void orders.push(data));

    const { id } = await users.emit('user-created', { user_id: 'u1' });
    await net.settled();

    expect(orders).toEqual([{ user_id: 'u1' }]);
    const letters = await net.deadLetters();
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ service: 'users', target: 'payments', eventId: id, reason: 'refused', status: 422 });
    expect(letters[0]!.error).toContain('unsupported country');
    expect(sockets).toEqual({ connects: 0, listens: 0 });
  });

  test('a handler that fails once is retried, and the handler beside it that succeeded does not run again', async () => {
    const net = network();
    const users = net.bus('users').declareEvent('user-created', ['payments']);
    const payments = net.bus('payments');
    const runs = { customer: 0, credit: 0 };
    payments.subscribeTo('user-created', () => void (runs.customer += 1), { name: 'customer' });
    payments.subscribeTo(
      'user-created',
      () => {
        runs.credit += 1;
        if (runs.credit === 1) throw new Error('database briefly unavailable');
      },
      { name: 'credit' },
    );

    await users.emit('user-created', { user_id: 'u1' });
    await net.settled();

    expect(runs).toEqual({ customer: 1, credit: 2 });
    expect(await net.deadLetters()).toEqual([]);
  });

  test('RetryLaterError: the sender waits the Retry-After it asked for, then the handler runs again', async () => {
    const net = network();
    const users = net.bus('users').declareEvent('user-created', ['payments']);
    const runs: number[] = [];
    net.bus('payments').subscribeTo('user-created', () => {
      runs.push(Date.now());
      if (runs.length === 1) throw new RetryLaterError(1, 'the CRM is throttling');
    });

    await users.emit('user-created', { user_id: 'u1' });
    await net.settled();

    expect(runs).toHaveLength(2);
    // It waited the 1 s Retry-After, not the 10–100 ms backoff of an immediate retry (a lower bound: never flaky).
    expect(runs[1]! - runs[0]!).toBeGreaterThanOrEqual(900);
  });

  test('the receiver validates against its own schema: data it refuses (400) becomes a dead letter, no handler runs', async () => {
    const net = network();
    const users = net.bus('users').declareEvent('user-created', ['payments']); // no schema on the sending side
    let ran = 0;
    net.bus('payments').subscribeTo('user-created', () => void (ran += 1), {
      schema: { type: 'object', required: ['user_id', 'email'], properties: { email: { type: 'string' } } },
    });

    await users.emit('user-created', { user_id: 'u1' });
    await net.settled();

    expect(ran).toBe(0);
    expect(await net.deadLetters()).toMatchObject([{ target: 'payments', reason: 'refused', status: 400 }]);
  });

  test('signatures are checked: a receiver holding another secret refuses (401) and nothing runs', async () => {
    const net = network();
    const users = net.bus('users', { redelivery: { horizonMs: 300 } }).declareEvent('user-created', ['payments']);
    let ran = 0;
    net
      .bus('payments', { secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' })
      .subscribeTo('user-created', () => void (ran += 1));

    await users.emit('user-created', { user_id: 'u1' });
    await net.settled();

    expect(ran).toBe(0);
    expect(await net.deadLetters()).toMatchObject([{ target: 'payments', reason: 'expired', status: 401 }]);
  });

  test('an event emitted by a handler is delivered before settled() resolves', async () => {
    const net = network();
    const users = net.bus('users').declareEvent('user-created', ['payments']);
    const payments = net.bus('payments').declareEvent('customer-created', ['orders']);
    payments.subscribeTo('user-created', async (data) => {
      await payments.emit('customer-created', data);
    });
    const seen: unknown[] = [];
    net.bus('orders').subscribeTo('customer-created', (data) => void seen.push(data));

    await users.emit('user-created', { user_id: 'u1' });
    await net.settled();

    expect(seen).toEqual([{ user_id: 'u1' }]);
    expect(net.emitted().map((e) => `${e.source}:${e.type}`)).toEqual(['users:user-created', 'payments:customer-created']);
  });

  test('each bus of the network records its own emits: bus.emitted(type)', async () => {
    const net = network();
    const users = net.bus('users');
    users.declareEvent('user-created', ['payments']);
    net.bus('payments').subscribeTo('user-created', () => {});

    await users.emit('user-created', { user_id: 'u1' });
    await net.settled();

    expect(users.emitted('user-created')).toHaveLength(1);
    expect(users.emitted('user-created')[0]).toMatchObject({ type: 'user-created', source: 'users', data: { user_id: 'u1' } });
    expect(users.emitted('user-deleted')).toEqual([]);
  });

  test('settled() waits for a handler still running', async () => {
    const net = network();
    const users = net.bus('users').declareEvent('user-created', ['payments']);
    const done: string[] = [];
    net.bus('payments').subscribeTo('user-created', async (data: unknown) => {
      await new Promise((resolve) => setTimeout(resolve, 150));
      done.push((data as { user_id: string }).user_id);
    });

    await users.emit('user-created', { user_id: 'u1' });
    await net.settled();

    expect(done).toEqual(['u1']);
  });

  test('settled() fails after its timeout, naming the deliveries still pending', async () => {
    const net = network();
    const users = net.bus('users').declareEvent('user-created', ['ghost']);
    await users.emit('user-created', { user_id: 'u1' });

    await expect(net.settled({ timeoutMs: 200 })).rejects.toThrow(
      'not settled within 200 ms: users → ghost: 1 pending (no service "ghost" in the network)',
    );
  });

  test('settled() failing names the cause behind the pending events: the last 401 and its hint', async () => {
    const net = network();
    net.bus('payments', { secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' }).subscribeTo('user-created', () => undefined);
    const users = net.bus('users').declareEvent('user-created', ['payments']);
    await users.emit('user-created', { user_id: 'u1' });

    const failure = net.settled({ timeoutMs: 300 });
    await expect(failure).rejects.toThrow('users → payments: 1 pending (last failure: HTTP 401');
    await expect(failure).rejects.toThrow('401 from payments: check EVENTS_SECRET / EVENTS_SERVICE_PAYMENTS_SECRET on both sides');
  });

  test('the buses write to the network logger', async () => {
    const capture = createCapturingLogger('info');
    const net = network({ logger: capture.logger });
    net.bus('payments').subscribeTo('user-created', () => undefined);
    const users = net.bus('users').declareEvent('user-created', ['payments']);
    const { id } = await users.emit('user-created', { user_id: 'u1' });
    await net.settled();

    expect(capture.withMessage('event received')).toMatchObject([{ eventId: id, source: 'users', target: 'payments', status: 200 }]);
    expect(capture.withMessage('event delivered')).toMatchObject([{ eventId: id, target: 'payments', attempt: 1 }]);
  });
});

/**
 * The examples' own tests, through the test kit: the seed scenario's handlers run in one process,
 * with the real signatures, validation and dedupe, and no server started.
 */
import request from 'supertest';
import { createTestNetwork, signedRequest } from '../src/testing/index.js';
import { createOrdersService } from './orders.js';
import { createPaymentsService } from './payments.js';
import { createPaymentsFastifyService } from './payments-fastify.js';
import { createUsersService } from './users.js';

function seedScenario() {
  const network = createTestNetwork();
  const payments = createPaymentsService(network.options('payments'));
  const orders = createOrdersService(network.options('orders'));
  const users = createUsersService(network.options('users'));
  for (const service of [payments, orders, users]) network.add(service.bus);
  return { network, users, payments, orders };
}

describe('seed scenario (examples/)', () => {
  let seed: ReturnType<typeof seedScenario>;
  beforeEach(() => {
    seed = seedScenario();
  });
  afterEach(() => seed.network.close());

  test('a new user becomes a payments customer with a welcome credit, and gets an order history', async () => {
    const { network, users, payments, orders } = seed;
    await users.bus.emit('user-created', { user_id: 'u1', email: 'ada@example.com' });
    await network.settled();

    expect(network.emitted('user-created')).toHaveLength(1);
    expect(payments.customers.get('u1')).toEqual({ email: 'ada@example.com' });
    expect(payments.received).toEqual(
      expect.arrayContaining(['user-created u1 → customer created', 'user-created u1 → welcome credit granted']),
    );
    expect(orders.histories.get('u1')).toEqual([]);
  });

  test('a deleted user is removed from payments', async () => {
    const { network, users, payments } = seed;
    await users.bus.emit('user-created', { user_id: 'u1', email: 'ada@example.com' });
    await users.bus.emit('user-deleted', { user_id: 'u1' });
    await network.settled();

    expect(payments.customers.size).toBe(0);
    expect(network.emitted().map((e) => e.type)).toEqual(['user-created', 'user-deleted']);
  });

  test("payments' mounted middleware, tested with supertest and a signed request", async () => {
    const { network, payments } = seed;
    const event = signedRequest('user-created', { user_id: 'u9', email: 'grace@example.com' }, { secret: network.secret, source: 'users' });
    await request(payments.app).post('/events').set(event.headers).send(event.body).expect(200);
    await request(payments.app).get('/customers').expect(200, [{ id: 'u9', email: 'grace@example.com' }]);
  });

  test("payments on Fastify: its plugin answers a signed request beside the app's own route", async () => {
    const { network } = seed;
    const onFastify = createPaymentsFastifyService(network.options('payments'));
    const origin = await onFastify.app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const event = signedRequest('user-created', { user_id: 'u9', email: 'grace@example.com' }, { secret: network.secret, source: 'users' });
      expect((await fetch(`${origin}/events`, { method: 'POST', headers: event.headers, body: event.body })).status).toBe(200);
      expect(await (await fetch(`${origin}/customers`)).json()).toEqual([{ id: 'u9', email: 'grace@example.com' }]);
    } finally {
      await onFastify.app.close();
      await onFastify.bus.close();
    }
  });
});

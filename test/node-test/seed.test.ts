/**
 * The test kit under node:test (the README's example), run by `npm test` after jest:
 * `node --import tsx --test test/node-test/`.
 */
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { createOrdersService } from '../../examples/orders.js';
import { createPaymentsService } from '../../examples/payments.js';
import { createUsersService } from '../../examples/users.js';
import { createTestNetwork, signedRequest, type TestNetwork } from '../../src/testing/index.js';

let network: TestNetwork;
afterEach(() => network.close());

test('user-created reaches payments and orders without a server', async () => {
  network = createTestNetwork();
  const payments = createPaymentsService(network.options('payments'));
  const orders = createOrdersService(network.options('orders'));
  const users = createUsersService(network.options('users'));
  for (const service of [payments, orders, users]) network.add(service.bus);

  await users.bus.emit('user-created', { user_id: 'u1', email: 'ada@example.com' });
  await network.settled();

  assert.equal(network.emitted('user-created').length, 1);
  assert.deepEqual(payments.customers.get('u1'), { email: 'ada@example.com' });
  assert.deepEqual(orders.histories.get('u1'), []);
});

test('a signed request through bus.handle, then the same event id again: handlers run once', async () => {
  network = createTestNetwork();
  const payments = createPaymentsService(network.options('payments'));
  network.add(payments.bus);
  const data = { user_id: 'u2', email: 'linus@example.com' };

  const first = signedRequest('user-created', data, { secret: network.secret, source: 'users' });
  const again = signedRequest('user-created', data, { secret: network.secret, source: 'users', id: first.event.id });
  assert.equal((await payments.bus.handle({ headers: first.headers, body: Buffer.from(first.body) })).status, 200);
  const duplicate = await payments.bus.handle({ headers: again.headers, body: Buffer.from(again.body) });
  assert.deepEqual(duplicate.body, { status: 'duplicate', id: first.event.id });
  assert.equal(payments.received.length, 2); // two user-created handlers, once each
});

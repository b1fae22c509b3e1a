/**
 * `assertCompatible(producerDoc, consumerDoc)` from `events-library/testing`: the CI check in a
 * team's own tests. Passes when every payload the producer may send fits the consumer; otherwise
 * throws an AssertionError listing each finding (type, field, why).
 */
import { AssertionError } from 'node:assert';
import { createEventBus } from '../../src/index.js';
import { assertCompatible } from '../../src/testing/index.js';

const UserCreated = { type: 'object', properties: { email: { type: 'string', format: 'email' }, name: { type: 'string' } }, required: ['email'], additionalProperties: false } as const;

const users = createEventBus({ service: 'users', env: {}, secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', services: { payments: 'http://127.0.0.1:1' } });
users.declareEvent('user-created', ['payments'], { schema: UserCreated });
const payments = createEventBus({ service: 'payments', env: {} });
payments.subscribeTo('user-created', async () => {}, { schema: { type: 'object', properties: { email: { type: 'string' } }, required: ['email'] } });
afterAll(() => Promise.all([users.close(), payments.close()]));

test('passes for a consumer that takes every payload the producer may send', () => {
  expect(() => assertCompatible(users.asyncapi(), payments.asyncapi())).not.toThrow();
  // Through JSON, as documents published by other teams arrive.
  expect(() => assertCompatible(JSON.parse(JSON.stringify(users.asyncapi())), payments.asyncapi())).not.toThrow();
});

test('throws an AssertionError naming each finding otherwise', () => {
  const strict = createEventBus({ service: 'strict', env: {} });
  strict.subscribeTo('user-created', async () => {}, { schema: { type: 'object', required: ['email', 'name'] } });
  let error: unknown;
  try {
    assertCompatible(users.asyncapi(), strict.asyncapi());
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(AssertionError);
  expect((error as Error).message).toBe(
    'strict may refuse what users sends (1 finding):\nusers → strict: user-created /name: the consumer requires this field; the producer may leave it out',
  );
  void strict.close();
});

test('a value that is not an AsyncAPI 3 document is a TypeError', () => {
  expect(() => assertCompatible({ asyncapi: '2.6.0' }, payments.asyncapi())).toThrow(TypeError);
});

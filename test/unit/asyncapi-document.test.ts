/**
 * `bus.asyncapi()`: the service's AsyncAPI 3.0 document, validated by the official parser
 * (`@asyncapi/parser`): a channel per event type (address: the type), the payload schemas, the
 * envelope and signature headers as traits described once, `send` per declaration with its
 * targets, `receive` per subscription; info.version from the option, else package.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Parser } from '@asyncapi/parser';
import { type AsyncApiDocument, ConfigError, createEventBus, type EventBus } from '../../src/index.js';
import { packageVersion } from '../../src/contracts/asyncapi.js';
import { setDescribeOnly } from '../../src/contracts/describe-only.js';
import { tempDir } from '../helpers/temp-dir.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const UserCreated = {
  type: 'object',
  properties: { user_id: { type: 'string', format: 'uuid' }, email: { type: 'string', format: 'email' } },
  required: ['user_id', 'email'],
  additionalProperties: false,
} as const;
/** A schema with a local reference of its own, which must keep resolving once it sits in the document. */
const OrderPlaced = {
  type: 'object',
  definitions: { line: { type: 'object', properties: { sku: { type: 'string' } }, required: ['sku'] } },
  properties: { lines: { type: 'array', items: { $ref: '#/definitions/line' } } },
  required: ['lines'],
} as const;

/** The official parser's verdict: its errors and warnings (severity 0 and 1), and its model of the document. */
async function parse(document: AsyncApiDocument) {
  const { document: parsed, diagnostics } = await new Parser().parse(JSON.stringify(document));
  return { parsed, problems: diagnostics.filter((d) => d.severity <= 1).map((d) => `${d.code}: ${d.message} at ${d.path.join('/')}`) };
}

const buses: EventBus[] = [];
afterAll(() => Promise.all(buses.map((bus) => bus.close())));
const bus = (options: Parameters<typeof createEventBus>[0]) => {
  const made = createEventBus({ secret: SECRET, env: {}, ...options });
  buses.push(made);
  return made;
};

test('the document of a service that sends and receives is valid AsyncAPI 3.0 and says what it sends, to whom, and what it receives', async () => {
  const users = bus({ service: 'users', services: { payments: 'http://127.0.0.1:1/events', orders: 'http://127.0.0.1:2/events' } });
  users.declareEvent('user-created', ['payments', 'orders'], { schema: UserCreated });
  users.declareEvent('order/placed v2', ['orders'], { schema: OrderPlaced });
  users.declareEvent('user-deleted', ['orders']);
  users.subscribeTo('payment-failed', async () => {}, { schema: { type: 'object', properties: { reason: { type: 'string' } } }, name: 'Users.onPaymentFailed' });
  users.subscribeTo('payment-failed', async () => {});
  const document = users.asyncapi();

  const { parsed, problems } = await parse(document);
  expect(problems).toEqual([]);
  expect(parsed).toBeDefined();
  expect(parsed!.info().title()).toBe('users');
  expect(parsed!.channels().all().map((c) => c.address()).sort()).toEqual(['order/placed v2', 'payment-failed', 'user-created', 'user-deleted']);
  const operations = parsed!.operations().all().map((o) => ({
    action: o.action(),
    address: o.channels().all()[0]!.address(),
    targets: o.extensions().get('x-targets')?.value(),
    handler: o.extensions().get('x-handler')?.value(),
  }));
  expect(operations).toEqual(expect.arrayContaining([
    { action: 'send', address: 'user-created', targets: ['payments', 'orders'], handler: undefined },
    { action: 'send', address: 'user-deleted', targets: ['orders'], handler: undefined },
    { action: 'receive', address: 'payment-failed', targets: undefined, handler: 'Users.onPaymentFailed' },
    { action: 'receive', address: 'payment-failed', targets: undefined, handler: 'payment-failed#2' },
  ]));
  expect(operations).toHaveLength(5);

  // The payload is the declared schema; a schema's own references still resolve.
  const sent = parsed!.operations().all().find((o) => o.action() === 'send' && o.channels().all()[0]!.address() === 'user-created')!;
  expect(sent.messages().all()[0]!.payload()!.json()).toMatchObject(UserCreated);
  const order = parsed!.channels().all().find((c) => c.address() === 'order/placed v2')!.messages().all()[0]!;
  expect(order.payload()!.properties()!.lines!.items()).toMatchObject({ _json: { required: ['sku'] } });
  // No schema, no payload: any payload.
  expect(parsed!.channels().all().find((c) => c.address() === 'user-deleted')!.messages().all()[0]!.hasPayload()).toBe(false);

  // The envelope and the signature headers: described once, as traits every message carries.
  const traits = document.components.messageTraits as Record<string, { headers?: { required?: string[] } }>;
  expect(Object.keys(traits)).toEqual(['cloudEvents', 'standardWebhooks']);
  expect(traits.standardWebhooks!.headers!.required).toEqual(['webhook-id', 'webhook-timestamp', 'webhook-signature']);
  for (const message of parsed!.messages().all()) expect(message.headers()?.required()).toEqual(['webhook-id', 'webhook-timestamp', 'webhook-signature']);
  expect(JSON.stringify(document)).not.toContain(SECRET);
});

test('a type sent and received with different schemas gets a message per schema', async () => {
  const orders = bus({ service: 'orders', services: { orders: 'http://127.0.0.1:1/events' } });
  orders.declareEvent('order-placed', ['orders'], { schema: { type: 'object', required: ['id'] } });
  orders.subscribeTo('order-placed', async () => {}, { schema: { type: 'object' } });
  const document = orders.asyncapi();
  expect(Object.keys((document.channels['order-placed'] as { messages: object }).messages)).toEqual(['order-placed', 'order-placed-2']);
  expect((await parse(document)).problems).toEqual([]);
});

test('info.version: the asyncapi option, else the nearest package.json, else 0.0.0', () => {
  expect(bus({ service: 'a', asyncapi: { version: '2.3.0' } }).asyncapi().info).toEqual({ title: 'a', version: '2.3.0' });
  expect(bus({ service: 'a' }).asyncapi().info.version).toBe(JSON.parse(readFileSync('package.json', 'utf8')).version);
  const dir = tempDir('asyncapi-version');
  writeFileSync(dir.file('package.json'), JSON.stringify({ name: 'svc', version: '4.5.6' }));
  mkdirSync(join(dir.path, 'dist', 'nested'), { recursive: true });
  expect(packageVersion(join(dir.path, 'dist', 'nested'))).toBe('4.5.6');
  writeFileSync(dir.file('package.json'), JSON.stringify({ name: 'svc' }));
  expect(packageVersion(join(dir.path, 'dist'))).toBe('0.0.0');
  expect(packageVersion('/')).toBe('0.0.0');
  dir.remove();
  expect(() => createEventBus({ asyncapi: { version: '' }, env: {} })).toThrow(ConfigError);
});

test('a bus with no service name has no document to give', () => {
  expect(() => bus({}).asyncapi()).toThrow(/set EVENTS_SERVICE_NAME/);
});

test('describe-only: declarations need no target URL or secret, and nothing is opened', async () => {
  expect(() => createEventBus({ service: 'users', env: {} }).declareEvent('user-created', ['payments'])).toThrow(/EVENTS_SERVICE_PAYMENTS_URL/);
  setDescribeOnly(true);
  let described: EventBus;
  try {
    described = bus({ service: 'users', secret: undefined, env: { EVENTS_OUTBOX_PATH: '/nonexistent/dir/outbox.db', EVENTS_BROKER_URL: 'amqp://127.0.0.1:1' } });
  } finally {
    setDescribeOnly(false);
  }
  described.declareEvent('user-created', ['payments'], { schema: UserCreated });
  described.declareEvent('user-deleted', { schema: { type: 'object' } }); // without targets: to every subscriber, through the broker
  described.subscribeTo('payment-failed', async () => {});
  expect(described.asyncapi().operations).toMatchObject({
    'send.user-created': { 'x-targets': ['payments'] },
    'send.user-deleted': { 'x-targets': ['*'] },
    'receive.payment-failed': { action: 'receive' },
  });
  // The in-memory stores, and no broker consumer, whatever the environment says.
  expect(await described.health()).toMatchObject({ outbox: { durable: false }, consumers: {} });
});

test('a decorated method is a receive operation under its handler name, ClassName.methodName', () => {
  const payments = bus({ service: 'payments' });
  class Customers {
    @payments.subscribeTo('user-created', { schema: UserCreated })
    async create(): Promise<void> {}
  }
  new Customers();
  expect(payments.asyncapi().operations['receive.user-created']).toMatchObject({ action: 'receive', 'x-handler': 'Customers.create' });
});

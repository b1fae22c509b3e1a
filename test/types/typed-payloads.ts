/**
 * Type tests, compiled by `npm run typecheck` (tsc -p test/types): every `@ts-expect-error`
 * line must be an error, or the build fails. Nothing here runs.
 */
import { Type } from '@sinclair/typebox';
import {
  createEventBus,
  declareEvent,
  emit,
  subscribeTo,
  type EmitReceipt,
  type EventBus,
  type ReceivedEvent,
} from '../../src/index.js';

const UserCreated = {
  type: 'object',
  properties: { user_id: { type: 'string' }, email: { type: 'string' }, age: { type: 'integer' } },
  required: ['user_id', 'email'],
  additionalProperties: false,
} as const;

declare const bus0: EventBus;

// 1. A bus typed by declareEvent's schema (chained).
const bus = bus0.declareEvent('user-created', ['payments'], { schema: UserCreated });
const receipt: Promise<EmitReceipt> = bus.emit('user-created', { user_id: 'u1', email: 'a@b.c' });
void receipt;
bus.emit('user-created', { user_id: 'u1', email: 'a@b.c', age: 3 });
// @ts-expect-error: email is required
bus.emit('user-created', { user_id: 'u1' });
// @ts-expect-error: user_id must be a string
bus.emit('user-created', { user_id: 1, email: 'a@b.c' });
// @ts-expect-error: no extra properties (additionalProperties: false)
bus.emit('user-created', { user_id: 'u1', email: 'a@b.c', admin: true });
// @ts-expect-error: a typed bus refuses a type it was never declared with
bus.emit('user-deleted', { user_id: 'u1' });
// @ts-expect-error: the same on a bus typed by one chained declareEvent
createEventBus().declareEvent('a', ['payments'], { schema: UserCreated }).emit('user-deleted', {});

// A declaration without a schema adds its type too (any payload, validated at run time only).
const mixed = bus.declareEvent('user-deleted', ['payments']);
mixed.emit('user-deleted', { anything: 1 });
mixed.emit('user-created', { user_id: 'u1', email: 'a@b.c' });
// @ts-expect-error: the schema of user-created still applies
mixed.emit('user-created', { user_id: 'u1' });
// @ts-expect-error: and other types are still refused
mixed.emit('user-updated', {});

// 2. The handler's data is typed by the event map …
bus.subscribeTo('user-created', (data, event) => {
  const id: string = data.user_id;
  const age: number | undefined = data.age;
  const full: ReceivedEvent<{ user_id: string; email: string; age?: number }> = event;
  // @ts-expect-error: no such field
  void data.nope;
  void [id, age, full, event.id, event.type, event.source, event.time];
});

// … or by the schema passed to subscribeTo.
createEventBus().subscribeTo(
  'user-created',
  (data) => {
    const email: string = data.email;
    // @ts-expect-error: age is number | undefined, not string
    const wrong: string = data.age;
    void [email, wrong];
  },
  { schema: UserCreated },
);

// 3. TypeBox schemas work too.
const OrderPlaced = Type.Object({ order_id: Type.String(), total: Type.Number() });
const typed = createEventBus().declareEvent('order-placed', ['billing'], { schema: OrderPlaced });
typed.emit('order-placed', { order_id: 'o1', total: 3 });
// @ts-expect-error: total must be a number
typed.emit('order-placed', { order_id: 'o1', total: '3' });

// 4. Module-level functions, typed by declaration merging.
declare module '../../src/index.js' {
  interface EventRegistry {
    'user-created': typeof UserCreated;
  }
}
declareEvent('user-created', ['payments'], { schema: UserCreated });
emit('user-created', { user_id: 'u1', email: 'a@b.c' });
// @ts-expect-error: email is required
emit('user-created', { user_id: 'u1' });
subscribeTo('user-created', async (data) => {
  const id: string = data.user_id;
  void id;
});
subscribeTo('user-created', (data) => {
  // @ts-expect-error: user_id is a string
  const n: number = data.user_id;
  void n;
});

// @ts-expect-error: with EventRegistry merged, the module-level emit refuses a type it does not list
emit('user-deleted', { user_id: 'u1' });

// 5. A bus with nothing declared to the checker but the registry: subscribing to any type is fine
// (a receiver subscribes to what other services declare), and an unknown type's data is `unknown`.
// (untyped/untyped-bus.ts checks a program without EventRegistry entries: any type, any payload.)
const plain = createEventBus({ service: 'users' });
// @ts-expect-error: the registry (section 4) types every bus of this program
plain.emit('account-opened', { account_id: 'a1' });
const namedHandler = async (data: unknown, event: ReceivedEvent<unknown>): Promise<void> => {
  void [data, event.id];
};
plain.subscribeTo('anything', namedHandler);
plain.subscribeTo('anything', (data) => {
  // @ts-expect-error: data is unknown until a schema says otherwise
  void data.field;
});

// A pg Pool is a DatabasePool; a handler's third argument carries the inbox transaction's client.
import { Pool } from 'pg';
import type { DatabasePool, HandlerContext } from '../../src/index.js';
const pgPool: DatabasePool = new Pool();
createEventBus({ service: 'ledger', database: pgPool, databaseSchema: 'events' });
subscribeTo('user-created', async (_data, _event, context: HandlerContext) => {
  await context.tx?.query('INSERT INTO t (a) VALUES ($1)', [1]);
  // @ts-expect-error tx is optional: only the PostgreSQL inbox provides it
  await context.tx.query('SELECT 1');
});

// Declared without targets (through a broker: to every service subscribed to the type): typed the same.
const toSubscribers = createEventBus().declareEvent('user-created', { schema: UserCreated });
toSubscribers.emit('user-created', { user_id: 'u1', email: 'a@b.c' });
// @ts-expect-error: email is required
toSubscribers.emit('user-created', { user_id: 'u1' });
createEventBus().declareEvent('anything').emit('anything', { free: 'form' });
declareEvent('user-created', { schema: UserCreated });

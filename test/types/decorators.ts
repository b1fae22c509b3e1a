/**
 * Type tests for `subscribeTo` as a standard decorator (TypeScript ≥ 5, no experimentalDecorators):
 * the decorated method's parameters are checked against the event's data. Compiled by `npm run
 * typecheck`; nothing here runs. (legacy/decorators.ts: the same class compiled the legacy way.)
 */
import { Type } from '@sinclair/typebox';
import { createEventBus, subscribeTo, type HandlerContext, type ReceivedEvent } from '../../src/index.js';

const UserCreated = {
  type: 'object',
  properties: { user_id: { type: 'string' }, email: { type: 'string' }, age: { type: 'integer' } },
  required: ['user_id', 'email'],
  additionalProperties: false,
} as const;
type User = { user_id: string; email: string; age?: number };
const OrderPlaced = Type.Object({ order_id: Type.String(), total: Type.Number() });

const bus = createEventBus({ service: 'billing' });

export class Billing {
  readonly opened: string[] = [];

  // Typed by the schema given to the decorator; `this` is the instance.
  @bus.subscribeTo('user-created', { schema: UserCreated })
  async openAccount(data: User, event: ReceivedEvent<User>, context: HandlerContext): Promise<void> {
    this.opened.push(data.user_id, event.id);
    await context.tx?.query('SELECT 1');
  }

  // Fewer parameters, a narrower view of the data, a synchronous method: all fine.
  @bus.subscribeTo('user-created', { schema: UserCreated, name: 'welcome' })
  welcome(data: { email: string }): void {
    void data.email;
  }

  // TypeBox schemas type it too.
  @bus.subscribeTo('order-placed', { schema: OrderPlaced })
  bill(data: { order_id: string; total: number }): void {
    void data;
  }

  // Module-level: typed by the EventRegistry (typed-payloads.ts registers user-created) …
  @subscribeTo('user-created')
  fromRegistry(data: User): void {
    void data;
  }

  // … and `unknown` for a type nothing describes.
  @subscribeTo('anything')
  anything(data: unknown): void {
    void data;
  }

  // Private methods can be decorated (the decorator calls them; nothing else needs to).
  @subscribeTo('user-created', { schema: UserCreated })
  // eslint-disable-next-line no-unused-private-class-members
  #audit(data: User): void {
    void data;
  }

  // @ts-expect-error: user_id is a string, not a number
  @bus.subscribeTo('user-created', { schema: UserCreated })
  wrongType(data: { user_id: number }): void {
    void data;
  }

  // @ts-expect-error: the data has no field `nope`
  @subscribeTo('user-created')
  missingField(data: { nope: string }): void {
    void data;
  }

  // @ts-expect-error: total is a number
  @bus.subscribeTo('order-placed', { schema: OrderPlaced })
  wrongTypeBox(data: { total: string }): void {
    void data;
  }

  // @ts-expect-error: an untyped event's data is unknown: say so, or give a schema
  @subscribeTo('anything')
  assumed(data: { x: string }): void {
    void data;
  }

  // @ts-expect-error: a handler returns nothing (or a promise of nothing)
  @bus.subscribeTo('user-created', { schema: UserCreated })
  returnsValue(data: User): string {
    return data.email;
  }

  // @ts-expect-error: instance methods only (a static one would subscribe at import)
  @subscribeTo('anything')
  static everywhere(data: unknown): void {
    void data;
  }

  // @ts-expect-error: methods only
  @subscribeTo('anything')
  field = 1;
}

// The handler form is unchanged, and a wrong handler is not mistaken for decorator options.
bus.subscribeTo('user-created', (data) => void data.email, { schema: UserCreated });
// @ts-expect-error: a mistyped handler is an error, not a decorator call
bus.subscribeTo('user-created', (data: { nope: number }) => void data, { schema: UserCreated });
// @ts-expect-error: likewise with no options
bus.subscribeTo('user-created', (data: { nope: number }) => void data);

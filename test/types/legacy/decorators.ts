/**
 * Type tests for `subscribeTo` as a legacy decorator (`experimentalDecorators`, as NestJS compiles):
 * the same parameter checks as the standard form, and `bus.register(instance)` subscribes the
 * instance. Its own program, with its own tsconfig. Compiled by `npm run typecheck`; nothing here runs.
 */
import {
  createEventBus,
  decoratedMethods,
  subscribeTo,
  type DecoratedMethod,
  type ReceivedEvent,
  type Unsubscribe,
} from '../../../src/index.js';

const UserCreated = {
  type: 'object',
  properties: { user_id: { type: 'string' }, email: { type: 'string' } },
  required: ['user_id', 'email'],
  additionalProperties: false,
} as const;
type User = { user_id: string; email: string };

const bus = createEventBus({ service: 'billing' });

class Billing {
  readonly opened: string[] = [];

  @subscribeTo('user-created', { schema: UserCreated })
  async openAccount(data: User, event: ReceivedEvent<User>): Promise<void> {
    this.opened.push(data.user_id, event.id);
  }

  @bus.subscribeTo('user-created', { schema: UserCreated, name: 'welcome' })
  welcome(data: { email: string }): void {
    void data.email;
  }

  @subscribeTo('anything')
  anything(data: unknown): void {
    void data;
  }

  // @ts-expect-error: user_id is a string, not a number
  @subscribeTo('user-created', { schema: UserCreated })
  wrongType(data: { user_id: number }): void {
    void data;
  }

  // @ts-expect-error: an untyped event's data is unknown
  @subscribeTo('anything')
  assumed(data: { x: string }): void {
    void data;
  }

  // @ts-expect-error: methods only
  @subscribeTo('anything')
  field = 1;
}

const off: Unsubscribe = bus.register(new Billing());
off();
const listed: DecoratedMethod[] = decoratedMethods(new Billing());
const first: { method: string | symbol; type: string; options: { name: string } } = listed[0]!;
void first;

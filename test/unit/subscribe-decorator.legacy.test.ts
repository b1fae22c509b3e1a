/**
 * `subscribeTo(type, options?)` as a legacy decorator: this file is compiled with
 * experimentalDecorators (jest.config.js, as NestJS projects are). The decorator records the method
 * on the prototype; `bus.register(instance)` subscribes it, `this` bound; `decoratedMethods` lists
 * them for framework integrations.
 */
import { ConfigError, decoratedMethods, subscribeTo, type ReceivedEvent } from '../../src/index.js';
import type { TestNetwork } from '../../src/testing/index.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { quietNetwork, UserIdSchema } from '../helpers/user-id-events.js';

const cleanups = cleanupAfterEach();
const UserCreated = UserIdSchema;

const network = (): TestNetwork => quietNetwork(cleanups);

class Billing {
  readonly seen: string[] = [];
  constructor(private readonly prefix = '') {}

  @subscribeTo('user-created', { schema: UserCreated })
  async open(data: { user_id: string }, event: ReceivedEvent<{ user_id: string }>): Promise<void> {
    this.seen.push(`${this.prefix}open ${data.user_id} ${event.source}`);
  }

  @subscribeTo('user-deleted', { name: 'billing-close' })
  close(data: unknown): void {
    this.seen.push(`${this.prefix}close ${JSON.stringify(data)}`);
  }
}

class Premium extends Billing {
  @subscribeTo('user-created')
  upgrade(): void {
    this.seen.push('upgrade');
  }
}

describe('subscribeTo as a legacy decorator (experimentalDecorators)', () => {
  test('constructing subscribes nothing; register(instance) subscribes its methods, `this` bound', async () => {
    const net = network();
    const users = net.bus('users').declareEvent('user-created', ['billing']).declareEvent('user-deleted', ['billing']);
    const bus = net.bus('billing');
    const billing = new Billing('acct-');
    bus.subscribeTo('user-created', () => undefined, { name: 'Billing.open' })(); // the name is free until registered

    const off = bus.register(billing);
    await users.emit('user-created', { user_id: 'u1' });
    await users.emit('user-deleted', { user_id: 'u1' });
    await net.settled();
    expect(billing.seen).toEqual(['acct-open u1 users', 'acct-close {"user_id":"u1"}']);

    off(); // one unsubscribe for them all: the names are free again
    bus.subscribeTo('user-created', () => undefined, { name: 'Billing.open' });
    bus.subscribeTo('user-deleted', () => undefined, { name: 'billing-close' });
  });

  test('decoratedMethods lists each method with its type and options, named ClassName.methodName by default', () => {
    expect(decoratedMethods(new Billing())).toEqual([
      { method: 'open', type: 'user-created', options: { schema: UserCreated, name: 'Billing.open' } },
      { method: 'close', type: 'user-deleted', options: { name: 'billing-close' } },
    ]);
    // A subclass inherits its parent's methods (named after the subclass), and the parent does not gain the child's.
    expect(decoratedMethods(new Premium()).map((m) => m.options.name)).toEqual(['Premium.open', 'billing-close', 'Premium.upgrade']);
    expect(decoratedMethods(new Billing())).toHaveLength(2);
    expect(decoratedMethods({})).toEqual([]);
  });

  test('registering a second instance on the same bus throws ConfigError and leaves the first subscribed', async () => {
    const net = network();
    const users = net.bus('users').declareEvent('user-created', ['billing']);
    const bus = net.bus('billing');
    const first = new Billing('1-');
    bus.register(first);
    expect(() => bus.register(new Billing('2-'))).toThrow(ConfigError);
    expect(() => bus.register(new Billing('2-'))).toThrow(/"Billing.open" is already subscribed/);
    await users.emit('user-created', { user_id: 'u1' });
    await net.settled();
    expect(first.seen).toEqual(['1-open u1 users']);
  });

  test('register is all or none: a name taken halfway releases what it subscribed', () => {
    const bus = network().bus('billing');
    bus.subscribeTo('user-deleted', () => undefined, { name: 'billing-close' });
    expect(() => bus.register(new Billing())).toThrow(/"billing-close" is already subscribed/);
    bus.subscribeTo('user-created', () => undefined, { name: 'Billing.open' }); // released
  });

  test('register of an object with no decorated method says what is wrong', () => {
    const bus = network().bus('billing');
    class Plain {}
    expect(() => bus.register(new Plain())).toThrow(/no method of Plain is decorated with @subscribeTo the legacy way/);
  });

  test('a static method is refused when the class is defined', () => {
    class Static {
      static open(): void {}
    }
    const descriptor = Object.getOwnPropertyDescriptor(Static, 'open')!;
    // What tsc emits for `@subscribeTo('x') static open()` under experimentalDecorators.
    expect(() => subscribeTo('user-created')(Static, 'open', descriptor)).toThrow(/decorates instance methods, not a static method/);
  });
});

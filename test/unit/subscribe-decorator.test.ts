/**
 * `subscribeTo(type, options?)` without a handler, used as a standard decorator (TypeScript ≥ 5,
 * no experimentalDecorators: how this file is compiled): each instance subscribes as it is
 * constructed, `this` bound to it, under `ClassName.methodName`. Events go through the test kit's
 * network: real signatures, validation and dedupe. (*.legacy.test.ts: the legacy form.)
 */
import { close, configure, ConfigError, getDefaultBus, subscribeTo, type ReceivedEvent } from '../../src/index.js';
import { signedRequest, type TestNetwork } from '../../src/testing/index.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { quietNetwork, UserIdSchema } from '../helpers/user-id-events.js';

const cleanups = cleanupAfterEach();
const UserCreated = UserIdSchema;

const network = (): TestNetwork => quietNetwork(cleanups);

/** A users bus emitting user-created to billing, and billing's bus. */
function services(net: TestNetwork) {
  const users = net.bus('users').declareEvent('user-created', ['billing'], { schema: UserCreated });
  return { users, billing: net.bus('billing') };
}

describe('subscribeTo as a standard decorator', () => {
  test('subscribes each instance when constructed, with `this` bound to it, and validates with the schema', async () => {
    const net = network();
    const { users, billing } = services(net);
    class Billing {
      readonly opened: string[] = [];
      constructor(private readonly prefix: string) {}
      @billing.subscribeTo('user-created', { schema: UserCreated })
      async open(data: { user_id: string }, event: ReceivedEvent<{ user_id: string }>): Promise<void> {
        this.opened.push(`${this.prefix}${data.user_id} ${event.source}`);
      }
    }
    // Defining the class subscribes nothing: the name is free until an instance exists.
    const probe = billing.subscribeTo('user-created', () => undefined, { name: 'Billing.open' });
    probe();

    const instance = new Billing('acct-');
    await users.emit('user-created', { user_id: 'u1' });
    await net.settled();
    expect(instance.opened).toEqual(['acct-u1 users']);
    // The decorator's schema validates what billing receives: a signed event that breaks it is a 400.
    const invalid = signedRequest('user-created', { user_id: 1 }, { secret: net.secret, source: 'users' });
    const answer = await billing.handle({ headers: invalid.headers, body: Buffer.from(invalid.body) });
    expect(answer.status).toBe(400);
    expect(instance.opened).toHaveLength(1);
  });

  test('the handler name is ClassName.methodName (the inbox key), or the name given', () => {
    const { billing } = services(network());
    class Ledger {
      @billing.subscribeTo('user-created')
      record(): void {}
      @billing.subscribeTo('user-created', { name: 'ledger-audit' })
      audit(): void {}
    }
    new Ledger();
    expect(() => billing.subscribeTo('user-created', () => undefined, { name: 'Ledger.record' })).toThrow(/"Ledger.record" is already subscribed/);
    expect(() => billing.subscribeTo('user-created', () => undefined, { name: 'ledger-audit' })).toThrow(/already subscribed/);
  });

  test('names come from the class, not the construction order, so they are the same on every run', () => {
    const [a, b] = [services(network()).billing, services(network()).billing];
    const define = (bus: typeof a) => {
      class First {
        @bus.subscribeTo('user-created')
        run(): void {}
      }
      class Second {
        @bus.subscribeTo('user-created')
        run(): void {}
      }
      return { First, Second };
    };
    const onA = define(a);
    new onA.First();
    new onA.Second();
    const onB = define(b);
    new onB.Second();
    new onB.First();
    for (const bus of [a, b]) {
      for (const name of ['First.run', 'Second.run']) expect(() => bus.subscribeTo('user-created', () => undefined, { name })).toThrow(/already subscribed/);
      // The numbered default of the handler form (`<type>#<n>`) is untouched by decorated methods.
      bus.subscribeTo('user-created', () => undefined, { name: 'user-created#1' });
    }
  });

  test('a second instance on the same bus throws ConfigError; on another bus it subscribes', async () => {
    const net = network();
    const { billing } = services(net);
    const other = net.bus('billing-2');
    const define = (bus: typeof billing) =>
      class Billing {
        @bus.subscribeTo('user-created')
        open(): void {}
      };
    const OnBilling = define(billing);
    new OnBilling();
    expect(() => new OnBilling()).toThrow(ConfigError);
    expect(() => new OnBilling()).toThrow(/"Billing.open" is already subscribed/);
    new (define(other))();
  });

  test('a subclass instance subscribes under the subclass name', () => {
    const { billing } = services(network());
    class Base {
      @billing.subscribeTo('user-created')
      open(): void {}
    }
    class Premium extends Base {}
    new Premium();
    expect(() => billing.subscribeTo('user-created', () => undefined, { name: 'Premium.open' })).toThrow(/already subscribed/);
    new Base(); // Base.open is still free
  });

  test('anything but an instance method is refused when the class is defined', () => {
    const { billing } = services(network());
    expect(() => {
      class Static {
        // @ts-expect-error: the types refuse it too
        @billing.subscribeTo('user-created')
        static open(): void {}
      }
      return Static;
    }).toThrow(/decorates instance methods, not a static method/);
    expect(() => {
      class Field {
        // @ts-expect-error: the types refuse it too
        @billing.subscribeTo('user-created')
        open = 1;
      }
      return Field;
    }).toThrow(/decorates instance methods, not a field/);
    expect(() => (billing.subscribeTo('user-created') as unknown as () => void)()).toThrow(/decorates instance methods/);
  });

  test('an anonymous class needs a name', () => {
    const { billing } = services(network());
    const make = () =>
      new (class {
        @billing.subscribeTo('user-created')
        open(): void {}
      })();
    expect(make).toThrow(/anonymous class needs a handler name/);
  });

  test('a missing handler is still an error, not a decorator', () => {
    const { billing } = services(network());
    const handlers: Record<string, () => void> = {};
    expect(() => billing.subscribeTo('user-created', handlers.missing!)).toThrow(/needs a handler function/);
  });
});

describe('subscribeTo as a standard decorator on the default bus', () => {
  afterEach(() => close());

  test('reaches the default bus only when an instance subscribes, so configure() may come after the class', async () => {
    const net = network();
    const users = net.bus('users').declareEvent('user-created', ['billing'], { schema: UserCreated });
    class Billing {
      readonly opened: string[] = [];
      @subscribeTo('user-created', { schema: UserCreated })
      open(data: { user_id: string }): void {
        this.opened.push(data.user_id);
      }
    }
    configure({ ...net.options('billing'), handleSignals: false }); // throws once the default bus exists
    const instance = new Billing();
    net.add(getDefaultBus());
    await users.emit('user-created', { user_id: 'u7' });
    await net.settled();
    expect(instance.opened).toEqual(['u7']);
  });
});

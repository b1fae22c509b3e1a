import winston from 'winston';
import { createEventBus } from '../../src/bus.js';
import { envKey, resolveConfig, resolveTarget, secretVariable, urlVariable } from '../../src/config.js';
import { DEFAULTS } from '../../src/defaults.js';
import {
  BusClosedError,
  ConfigError,
  EventsError,
  UndeclaredEventError,
  ValidationError,
} from '../../src/errors/index.js';
import { parseSecret } from '../../src/protocol/signature.js';
import type { Delivery, DeliveryResult, Transport } from '../../src/send/transport.js';

const SECRET_A = 'whsec_' + Buffer.alloc(24, 1).toString('base64');
const SECRET_B = 'whsec_' + Buffer.alloc(24, 2).toString('base64');
const SECRET_C = 'whsec_' + Buffer.alloc(32, 3).toString('base64');
/** A value that looks like a secret and must never appear in an error message. */
const LEAKY = 'whsec_TOPSECRETvalue!!';

/** The ConfigError thrown by `run`, or a test failure. */
function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

/** Asserts the error, its string form and its causes carry no part of `secret`. */
function expectNoSecret(error: Error, secret: string): void {
  const fragment = secret.slice('whsec_'.length, 'whsec_'.length + 8);
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    expect(e.message).not.toContain(fragment);
    expect(String(e)).not.toContain(fragment);
  }
}

const silent = () => winston.createLogger({ silent: true });

describe('resolveConfig', () => {
  test('reads EVENTS_SERVICE_NAME (trimmed)', () => {
    expect(resolveConfig({ env: { EVENTS_SERVICE_NAME: ' users ' } }).service).toBe('users');
  });

  test('without a name the service is undefined (a receive-only bus is allowed)', () => {
    expect(resolveConfig({ env: {} }).service).toBeUndefined();
    expect(resolveConfig({ env: { EVENTS_SERVICE_NAME: '   ' } }).service).toBeUndefined();
  });

  test('an empty service option is a ConfigError naming EVENTS_SERVICE_NAME', () => {
    const error = configError(() => resolveConfig({ service: ' ', env: {} }));
    expect(error.variable).toBe('EVENTS_SERVICE_NAME');
  });

  test('reads the environment given, not process.env', () => {
    const saved = process.env.EVENTS_SERVICE_NAME;
    process.env.EVENTS_SERVICE_NAME = 'from-process-env';
    try {
      expect(resolveConfig({ env: {} }).service).toBeUndefined();
      expect(resolveConfig({ env: { EVENTS_SERVICE_NAME: 'given' } }).service).toBe('given');
      expect(resolveConfig({}).service).toBe('from-process-env');
    } finally {
      if (saved === undefined) delete process.env.EVENTS_SERVICE_NAME;
      else process.env.EVENTS_SERVICE_NAME = saved;
    }
  });

  test('EVENTS_SECRET holds one key', () => {
    const { keys } = resolveConfig({ env: { EVENTS_SECRET: SECRET_A } });
    expect(keys).toEqual([parseSecret(SECRET_A)]);
  });

  test('EVENTS_SECRET as a space-separated list gives several keys, in order', () => {
    const { keys } = resolveConfig({ env: { EVENTS_SECRET: ` ${SECRET_A}   ${SECRET_B}\n${SECRET_C} ` } });
    expect(keys).toEqual([parseSecret(SECRET_A), parseSecret(SECRET_B), parseSecret(SECRET_C)]);
  });

  test('no secret means no keys (a send-nothing, receive-nothing bus still builds)', () => {
    expect(resolveConfig({ env: {} }).keys).toEqual([]);
    expect(resolveConfig({ env: { EVENTS_SECRET: '  ' } }).keys).toEqual([]);
  });

  test('a malformed EVENTS_SECRET entry is a ConfigError that says which entry, names the variable, and hides the secret', () => {
    const error = configError(() => resolveConfig({ env: { EVENTS_SECRET: `${SECRET_A} ${LEAKY}` } }));
    expect(error.variable).toBe('EVENTS_SECRET');
    expect(error.message).toContain('EVENTS_SECRET');
    expect(error.message).toContain('entry 2 of 2');
    expect(error.message).toMatch(/base64/);
    expectNoSecret(error, LEAKY);
    expectNoSecret(error, SECRET_A);
  });

  test('a secret without the whsec_ prefix is a ConfigError that hides it', () => {
    const raw = Buffer.alloc(24, 5).toString('base64');
    const error = configError(() => resolveConfig({ env: { EVENTS_SECRET: raw } }));
    expect(error.message).toContain('whsec_');
    expect(error.message).not.toContain(raw.slice(0, 8));
  });

  test('an empty secret option is a ConfigError', () => {
    const error = configError(() => resolveConfig({ secret: [], env: {} }));
    expect(error.message).toMatch(/empty/);
  });

  test('options win over the environment', () => {
    const config = resolveConfig({
      service: 'orders',
      secret: [SECRET_C],
      logLevel: 'warn',
      env: { EVENTS_SERVICE_NAME: 'users', EVENTS_SECRET: SECRET_A, EVENTS_LOG_LEVEL: 'debug' },
    });
    expect(config.service).toBe('orders');
    expect(config.keys).toEqual([parseSecret(SECRET_C)]);
    expect(config.logger.level).toBe('warn');
  });

  test('an option wins even when the environment value is malformed', () => {
    expect(resolveConfig({ secret: SECRET_A, env: { EVENTS_SECRET: LEAKY } }).keys).toEqual([parseSecret(SECRET_A)]);
  });

  test('EVENTS_LOG_LEVEL sets the default logger level; info by default', () => {
    expect(resolveConfig({ env: { EVENTS_LOG_LEVEL: 'debug' } }).logger.level).toBe('debug');
    expect(resolveConfig({ env: {} }).logger.level).toBe('info');
    expect(DEFAULTS.logLevel).toBe('info');
  });

  test('an unknown EVENTS_LOG_LEVEL is a ConfigError listing the levels (winston would silently drop every line)', () => {
    const error = configError(() => resolveConfig({ env: { EVENTS_LOG_LEVEL: 'loud' } }));
    expect(error.variable).toBe('EVENTS_LOG_LEVEL');
    expect(error.message).toContain('"loud"');
    expect(error.message).toContain('EVENTS_LOG_LEVEL');
    expect(error.message).toContain('debug');
  });

  test('a logger passed in is used as is', () => {
    const logger = silent();
    expect(resolveConfig({ logger, env: { EVENTS_LOG_LEVEL: 'loud' } }).logger).toBe(logger);
  });

  test('defaults come from DEFAULTS', () => {
    const config = resolveConfig({ env: {} });
    expect(config.path).toBe(DEFAULTS.path);
    expect(config.toleranceSeconds).toBe(300);
    expect(config.retry).toEqual(DEFAULTS.retry);
    expect(config.redelivery).toEqual(DEFAULTS.redelivery);
    expect(config.outbox.path).toBeUndefined();
    expect(config.inbox.path).toBeUndefined();
  });

  test('partial retry options are merged over the defaults', () => {
    expect(resolveConfig({ retry: { retries: 0 }, env: {} }).retry).toEqual({ ...DEFAULTS.retry, retries: 0 });
  });

  test('EVENTS_OUTBOX_PATH and EVENTS_INBOX_PATH choose durable stores; options win', () => {
    const env = { EVENTS_OUTBOX_PATH: '/tmp/o.db', EVENTS_INBOX_PATH: '/tmp/i.db' };
    expect(resolveConfig({ env }).outbox.path).toBe('/tmp/o.db');
    expect(resolveConfig({ env }).inbox.path).toBe('/tmp/i.db');
    expect(resolveConfig({ env, outbox: { path: '/tmp/x.db' } }).outbox.path).toBe('/tmp/x.db');
  });

  test.each([
    ['timeoutMs', { timeoutMs: 0 }],
    ['concurrency', { concurrency: -1 }],
    ['toleranceSeconds', { toleranceSeconds: Number.NaN }],
    ['retry.baseDelayMs', { retry: { baseDelayMs: 0 } }],
    ['redelivery.horizonMs', { redelivery: { horizonMs: Infinity } }],
  ])('a bad number for %s is a ConfigError naming it', (name, options) => {
    const error = configError(() => resolveConfig({ ...options, env: {} }));
    expect(error.message).toContain(name);
  });

  test('EVENTS_DATABASE_URL or the database option picks PostgreSQL (option wins); databaseSchema defaults to public', () => {
    const env = { EVENTS_DATABASE_URL: 'postgres://app@db:5432/app' };
    expect(resolveConfig({ env }).database).toBe('postgres://app@db:5432/app');
    expect(resolveConfig({ env }).databaseSchema).toBe('public');
    expect(resolveConfig({ env, database: 'postgresql://other/db', databaseSchema: 'events' })).toMatchObject({
      database: 'postgresql://other/db',
      databaseSchema: 'events',
    });
    expect(resolveConfig({ env: {} }).database).toBeUndefined();
  });

  test('a database that is not a postgres:// URL or a pool, or a schema that is not an identifier, is a ConfigError', () => {
    expect(configError(() => resolveConfig({ env: { EVENTS_DATABASE_URL: 'mysql://x/y' } })).message).toContain('EVENTS_DATABASE_URL');
    expect(configError(() => resolveConfig({ env: {}, database: {} as never })).message).toContain('pg Pool');
    expect(configError(() => resolveConfig({ env: {}, databaseSchema: 'a"; DROP' })).message).toContain('databaseSchema');
    // One rule for the name, here and in SQL: `$` is refused here rather than by the first query.
    expect(configError(() => resolveConfig({ env: { EVENTS_DATABASE_SCHEMA: 'events$1' } })).variable).toBe('EVENTS_DATABASE_SCHEMA');
  });

  test('databasePreparedStatements (EVENTS_DATABASE_PREPARED_STATEMENTS) defaults to on, the option wins; a value not on/off is a ConfigError', () => {
    expect(resolveConfig({ env: {} }).databasePreparedStatements).toBe(true);
    expect(resolveConfig({ env: { EVENTS_DATABASE_PREPARED_STATEMENTS: 'false' } }).databasePreparedStatements).toBe(false);
    expect(resolveConfig({ env: { EVENTS_DATABASE_PREPARED_STATEMENTS: 'false' }, databasePreparedStatements: true }).databasePreparedStatements).toBe(true);
    expect(configError(() => resolveConfig({ env: { EVENTS_DATABASE_PREPARED_STATEMENTS: 'sometimes' } })).variable).toBe('EVENTS_DATABASE_PREPARED_STATEMENTS');
  });

  test('databasePoolSize (EVENTS_DATABASE_POOL_SIZE) defaults to 10, the option wins; fewer than 2 or not a whole number is a ConfigError', () => {
    expect(resolveConfig({ env: {} }).databasePoolSize).toBe(10);
    expect(resolveConfig({ env: { EVENTS_DATABASE_POOL_SIZE: '4' } }).databasePoolSize).toBe(4);
    expect(resolveConfig({ env: { EVENTS_DATABASE_POOL_SIZE: '4' }, databasePoolSize: 6 }).databasePoolSize).toBe(6);
    for (const [options, named] of [
      [{ databasePoolSize: 1 }, 'databasePoolSize'],
      [{ databasePoolSize: 2.5 }, 'databasePoolSize'],
      [{ env: { EVENTS_DATABASE_POOL_SIZE: 'ten' } }, 'EVENTS_DATABASE_POOL_SIZE'],
      [{ env: { EVENTS_DATABASE_POOL_SIZE: '0' } }, 'EVENTS_DATABASE_POOL_SIZE'],
    ] as const) {
      const error = configError(() => resolveConfig({ env: {}, ...options }));
      expect(error.message).toContain(named);
      expect(error.message).toContain('at least 2');
      expect(error.variable).toBe('EVENTS_DATABASE_POOL_SIZE');
    }
  });

  test('the PostgreSQL inbox needs a service name, since every row carries it', () => {
    const error = configError(() => createEventBus({ env: { EVENTS_DATABASE_URL: 'postgres://127.0.0.1:1/x' }, logger: silent() }));
    expect(error.variable).toBe('EVENTS_SERVICE_NAME');
  });

  test('a path not starting with / is a ConfigError', () => {
    expect(() => resolveConfig({ path: 'events', env: {} })).toThrow(ConfigError);
  });
});

describe('variable names', () => {
  test.each([
    ['payments', 'PAYMENTS'],
    ['order-service', 'ORDER_SERVICE'],
    ['billing.v2', 'BILLING_V2'],
    ['Mixed Case', 'MIXED_CASE'],
  ])('%s → %s', (service, key) => {
    expect(envKey(service)).toBe(key);
    expect(urlVariable(service)).toBe(`EVENTS_SERVICE_${key}_URL`);
    expect(secretVariable(service)).toBe(`EVENTS_SERVICE_${key}_SECRET`);
  });
});

describe('resolveTarget', () => {
  const base = { EVENTS_SERVICE_NAME: 'users', EVENTS_SECRET: SECRET_A };

  test('reads EVENTS_SERVICE_<NAME>_URL with the name mangled', () => {
    const config = resolveConfig({ env: { ...base, EVENTS_SERVICE_ORDER_SERVICE_URL: 'http://orders.internal:3000/events' } });
    const target = resolveTarget(config, 'order-service');
    expect(target).toEqual({ name: 'order-service', url: 'http://orders.internal:3000/events', keys: [parseSecret(SECRET_A)], batch: true, receipt: true });
  });

  test('signs with every own key (rotation) when the target has no secret of its own', () => {
    const config = resolveConfig({
      env: { ...base, EVENTS_SECRET: `${SECRET_A} ${SECRET_B}`, EVENTS_SERVICE_PAYMENTS_URL: 'https://p.example/events' },
    });
    expect(resolveTarget(config, 'payments').keys).toEqual([parseSecret(SECRET_A), parseSecret(SECRET_B)]);
  });

  test('EVENTS_SERVICE_<NAME>_SECRET overrides EVENTS_SECRET for that target only', () => {
    const config = resolveConfig({
      env: {
        ...base,
        EVENTS_SERVICE_PAYMENTS_URL: 'http://p/events',
        EVENTS_SERVICE_PAYMENTS_SECRET: `${SECRET_B} ${SECRET_C}`,
        EVENTS_SERVICE_ORDERS_URL: 'http://o/events',
      },
    });
    expect(resolveTarget(config, 'payments').keys).toEqual([parseSecret(SECRET_B), parseSecret(SECRET_C)]);
    expect(resolveTarget(config, 'orders').keys).toEqual([parseSecret(SECRET_A)]);
  });

  test('the services option wins over the environment (string or entry)', () => {
    const config = resolveConfig({
      services: { payments: 'http://from-options/events', orders: { url: 'http://o-options/events', secret: SECRET_C } },
      env: {
        ...base,
        EVENTS_SERVICE_PAYMENTS_URL: 'http://from-env/events',
        EVENTS_SERVICE_ORDERS_URL: 'http://o-env/events',
        EVENTS_SERVICE_ORDERS_SECRET: SECRET_B,
      },
    });
    expect(resolveTarget(config, 'payments').url).toBe('http://from-options/events');
    expect(resolveTarget(config, 'orders')).toEqual({
      name: 'orders',
      url: 'http://o-options/events',
      keys: [parseSecret(SECRET_C)],
      batch: true,
      receipt: true,
    });
  });

  test('a missing URL is a ConfigError whose message contains the exact variable, set as .variable', () => {
    const config = resolveConfig({ env: base });
    const error = configError(() => resolveTarget(config, 'order-service'));
    expect(error.variable).toBe('EVENTS_SERVICE_ORDER_SERVICE_URL');
    expect(error.message).toContain('EVENTS_SERVICE_ORDER_SERVICE_URL');
    expect(error.message).toContain('"order-service"');
    expect(error.name).toBe('ConfigError');
    expect(error).toBeInstanceOf(EventsError);
  });

  test('an empty URL variable counts as missing', () => {
    const config = resolveConfig({ env: { ...base, EVENTS_SERVICE_PAYMENTS_URL: '  ' } });
    expect(configError(() => resolveTarget(config, 'payments')).variable).toBe('EVENTS_SERVICE_PAYMENTS_URL');
  });

  test('a malformed URL is a ConfigError naming the variable and saying it is not a valid URL', () => {
    const config = resolveConfig({ env: { ...base, EVENTS_SERVICE_PAYMENTS_URL: 'payments:3000/events' } });
    const error = configError(() => resolveTarget(config, 'payments'));
    expect(error.variable).toBe('EVENTS_SERVICE_PAYMENTS_URL');
    expect(error.message).toMatch(/EVENTS_SERVICE_PAYMENTS_URL (is not a valid URL|must be an http)/);
  });

  test('a URL without a scheme is a ConfigError', () => {
    const config = resolveConfig({ env: { ...base, EVENTS_SERVICE_PAYMENTS_URL: '127.0.0.1 events' } });
    const error = configError(() => resolveTarget(config, 'payments'));
    expect(error.message).toContain('is not a valid URL');
    expect(error.message).toContain('EVENTS_SERVICE_PAYMENTS_URL');
  });

  test.each(['ftp://payments/events', 'file:///etc/passwd', 'amqp://broker/events'])(
    'the non-http URL %s is a ConfigError asking for http(s)',
    (url) => {
      const config = resolveConfig({ env: { ...base, EVENTS_SERVICE_PAYMENTS_URL: url } });
      const error = configError(() => resolveTarget(config, 'payments'));
      expect(error.variable).toBe('EVENTS_SERVICE_PAYMENTS_URL');
      expect(error.message).toContain('http:// or https://');
    },
  );

  test('a URL with credentials is refused without echoing them', () => {
    const config = resolveConfig({ env: { ...base, EVENTS_SERVICE_PAYMENTS_URL: 'http://admin:hunter2@p/events' } });
    const error = configError(() => resolveTarget(config, 'payments'));
    expect(error.message).toContain('credentials');
    expect(error.message).not.toContain('hunter2');
  });

  test('a malformed target secret is a ConfigError naming its variable, without the secret', () => {
    const config = resolveConfig({
      env: { ...base, EVENTS_SERVICE_PAYMENTS_URL: 'http://p/events', EVENTS_SERVICE_PAYMENTS_SECRET: LEAKY },
    });
    const error = configError(() => resolveTarget(config, 'payments'));
    expect(error.variable).toBe('EVENTS_SERVICE_PAYMENTS_SECRET');
    expect(error.message).toContain('EVENTS_SERVICE_PAYMENTS_SECRET');
    expect(error.message).toContain('"payments"');
    expectNoSecret(error, LEAKY);
  });

  test('no secret anywhere is a ConfigError naming both variables', () => {
    const config = resolveConfig({ env: { EVENTS_SERVICE_NAME: 'users', EVENTS_SERVICE_PAYMENTS_URL: 'http://p/events' } });
    const error = configError(() => resolveTarget(config, 'payments'));
    expect(error.variable).toBe('EVENTS_SERVICE_PAYMENTS_SECRET');
    expect(error.message).toContain('EVENTS_SERVICE_PAYMENTS_SECRET');
    expect(error.message).toContain('EVENTS_SECRET');
  });

  test('an empty target name is a ConfigError', () => {
    const config = resolveConfig({ env: base });
    expect(() => resolveTarget(config, ' ')).toThrow(ConfigError);
  });
});

/** A transport that records what it is asked to send, and lets a test wait for the next send. */
class RecordingTransport implements Transport {
  readonly sent: Delivery[] = [];
  private waiters: Array<() => void> = [];

  async send(delivery: Delivery): Promise<DeliveryResult> {
    this.sent.push(delivery);
    for (const wake of this.waiters.splice(0)) wake();
    return { outcome: 'delivered', status: 204, attempts: 1 };
  }

  async close(): Promise<void> {}

  nextSend(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

describe('createEventBus: configuration errors are loud, at once', () => {
  // Nothing listens on port 1; the transport below never touches the network anyway.
  const NOWHERE = 'http://127.0.0.1:1/events';
  const UserCreated = {
    type: 'object',
    properties: { user_id: { type: 'string' }, email: { type: 'string', format: 'email' } },
    required: ['user_id', 'email'],
    additionalProperties: false,
  } as const;

  test('declareEvent for a target without a URL throws a ConfigError naming EVENTS_SERVICE_PAYMENTS_URL', async () => {
    const bus = createEventBus({ service: 'users', secret: SECRET_A, env: {}, logger: silent(), transport: new RecordingTransport() });
    try {
      const error = configError(() => bus.declareEvent('x', ['payments']));
      expect(error.variable).toBe('EVENTS_SERVICE_PAYMENTS_URL');
      expect(error.message).toContain('EVENTS_SERVICE_PAYMENTS_URL');
    } finally {
      await bus.close();
    }
  });

  test('declareEvent without a service name throws a ConfigError naming EVENTS_SERVICE_NAME', async () => {
    const bus = createEventBus({ secret: SECRET_A, env: { EVENTS_SERVICE_PAYMENTS_URL: NOWHERE }, logger: silent() });
    try {
      expect(configError(() => bus.declareEvent('x', ['payments'])).variable).toBe('EVENTS_SERVICE_NAME');
    } finally {
      await bus.close();
    }
  });

  test('declareEvent with no targets throws a ConfigError', async () => {
    const bus = createEventBus({ service: 'users', secret: SECRET_A, env: {}, logger: silent() });
    try {
      expect(() => bus.declareEvent('x', [])).toThrow(ConfigError);
    } finally {
      await bus.close();
    }
  });

  test('declareEvent without targets over HTTP push is a ConfigError that says why (HTTP needs addresses); an empty list stays an error', async () => {
    const bus = createEventBus({ service: 'users', secret: SECRET_A, env: {}, logger: silent() });
    try {
      expect(() => bus.declareEvent('x', { schema: { type: 'object' } })).toThrow(ConfigError);
      expect(() => bus.declareEvent('x')).toThrow(/declareEvent\("x"\) without target services: over HTTP push each event is POSTed to the address of each target service/);
      expect(() => bus.declareEvent('x', [], { schema: { type: 'object' } })).toThrow(/needs at least one target service/);
    } finally {
      await bus.close();
    }
  });

  test('declareEvent without targets, on a transport that reaches subscribers: one delivery to "*", no recipient, signed with EVENTS_SECRET (not a per-receiver secret)', async () => {
    const transport = new (class extends RecordingTransport {
      toSubscribers(type: string): true | string {
        return type === 'refused' ? 'not this one' : true;
      }
    })();
    const env = { EVENTS_SERVICE_PAYMENTS_SECRET: SECRET_B, EVENTS_SERVICE_PAYMENTS_URL: NOWHERE };
    const bus = createEventBus({ service: 'users', secret: SECRET_A, env, logger: silent(), transport });
    try {
      expect(() => bus.declareEvent('refused')).toThrow('declareEvent("refused") without target services: not this one');
      bus.declareEvent('user-created', { schema: UserCreated });
      await expect(bus.emit('user-created', { user_id: 'u1' } as never)).rejects.toThrow(ValidationError);
      const sent = transport.nextSend();
      const receipt = await bus.emit('user-created', { user_id: 'u1', email: 'a@example.com' });
      await sent;
      expect(receipt.targets).toEqual(['*']);
      expect(transport.sent).toHaveLength(1);
      const [delivery] = transport.sent;
      expect(delivery!.target.name).toBe('*');
      expect(delivery!.target.keys).toEqual([parseSecret(SECRET_A)]);
      expect(JSON.parse(delivery!.body)).not.toHaveProperty('recipient');
    } finally {
      await bus.close();
    }
  });

  test('emit of an undeclared type or an invalid payload rejects and sends nothing', async () => {
    const transport = new RecordingTransport();
    const bus = createEventBus({
      service: 'users',
      secret: SECRET_A,
      env: { EVENTS_SERVICE_PAYMENTS_URL: NOWHERE },
      logger: silent(),
      transport,
    }).declareEvent('user-created', ['payments'], { schema: UserCreated });
    try {
      await expect(bus.emit('order-placed' as 'user-created', { user_id: 'u1', email: 'a@example.com' })).rejects.toThrow(
        UndeclaredEventError,
      );
      await expect(bus.emit('order-placed' as 'user-created', { user_id: 'u1', email: 'a@example.com' })).rejects.toMatchObject({
        name: 'UndeclaredEventError',
        type: 'order-placed',
        message: expect.stringContaining('declareEvent("order-placed"'),
      });

      const invalid = bus.emit('user-created', { user_id: 'u1', email: 'not-an-email' });
      await expect(invalid).rejects.toThrow(ValidationError);
      const error = (await invalid.catch((e: unknown) => e)) as ValidationError;
      expect(error.type).toBe('user-created');
      expect(error.errors).toEqual([expect.objectContaining({ instancePath: '/email', keyword: 'format' })]);
      expect(error.message).toContain('/email');

      const missing = (await bus
        .emit('user-created', { user_id: 'u1' } as never)
        .catch((e: unknown) => e)) as ValidationError;
      expect(missing).toBeInstanceOf(ValidationError);
      expect(missing.errors.map((e) => e.params)).toContainEqual({ missingProperty: 'email' });

      expect((await bus.outboxStats()).pending).toBe(0);

      // A valid emit afterwards is the first and only delivery the transport ever sees.
      const sent = transport.nextSend();
      const receipt = await bus.emit('user-created', { user_id: 'u2', email: 'b@example.com' });
      await sent;
      expect(transport.sent).toHaveLength(1);
      expect(transport.sent[0]).toMatchObject({ eventId: receipt.id, type: 'user-created', source: 'users' });
      expect(transport.sent[0]!.target).toMatchObject({ name: 'payments', url: NOWHERE });
      expect(JSON.parse(transport.sent[0]!.body)).toMatchObject({ id: receipt.id, data: { user_id: 'u2' } });
    } finally {
      await bus.close();
    }
  });

  test('emit after close rejects with BusClosedError', async () => {
    const bus = createEventBus({
      service: 'users',
      secret: SECRET_A,
      env: { EVENTS_SERVICE_PAYMENTS_URL: NOWHERE },
      logger: silent(),
      transport: new RecordingTransport(),
    }).declareEvent('user-created', ['payments']);
    await bus.close();
    await expect(bus.emit('user-created', {})).rejects.toThrow(BusClosedError);
  });
});

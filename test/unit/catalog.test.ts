import { Catalog } from '../../src/catalog.js';
import { ConfigError, ValidationError } from '../../src/errors/index.js';
import type { JSONSchema } from '../../src/types.js';

const payments = 'payments';

const UserCreated = {
  type: 'object',
  properties: {
    user_id: { type: 'string', minLength: 1 },
    email: { type: 'string', format: 'email' },
    created_at: { type: 'string', format: 'date-time' },
  },
  required: ['user_id', 'email'],
  additionalProperties: false,
} as const satisfies JSONSchema;

const noop = async () => {};

/** The ValidationError thrown by `run`, or a test failure. */
function validationError(run: () => unknown): ValidationError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error('expected a ValidationError, nothing was thrown');
}

describe('Catalog: declarations', () => {
  test('declare then declaration returns the targets and a validator', () => {
    const catalog = new Catalog();
    catalog.declare('user-created', [payments], UserCreated);
    const declaration = catalog.declaration('user-created');
    expect(declaration).toMatchObject({ type: 'user-created', targets: [payments] });
    expect(typeof declaration?.validate).toBe('function');
    expect(catalog.declaration('order-placed')).toBeUndefined();
  });

  test('without a schema there is no validator and any payload passes', () => {
    const catalog = new Catalog();
    catalog.declare('ping', [payments], undefined);
    const { validate } = catalog.declaration('ping')!;
    expect(validate).toBeUndefined();
    expect(() => catalog.check('ping', validate, { anything: [1, 2] })).not.toThrow();
  });

  test('the same schema object is compiled once: one validate function everywhere it is used', () => {
    const catalog = new Catalog();
    catalog.declare('user-created', [payments], UserCreated);
    catalog.declare('user-updated', [payments], UserCreated);
    catalog.subscribe('user-created', noop, UserCreated);
    const validate = catalog.declaration('user-created')!.validate;
    expect(validate).toBeDefined();
    expect(catalog.declaration('user-updated')!.validate).toBe(validate);
    expect(catalog.subscribers('user-created')[0]!.validate).toBe(validate);
  });

  test('a different but equal schema object gets its own validator that behaves the same', () => {
    const catalog = new Catalog();
    catalog.declare('a', [payments], UserCreated);
    catalog.declare('b', [payments], structuredClone(UserCreated) as JSONSchema);
    const a = catalog.declaration('a')!.validate!;
    const b = catalog.declaration('b')!.validate!;
    expect(a({ user_id: 'u', email: 'x' })).toBe(false);
    expect(b({ user_id: 'u', email: 'x' })).toBe(false);
    expect(b({ user_id: 'u', email: 'u@example.com' })).toBe(true);
  });

  test('two objects of a schema with the same $id (a module loaded twice) do not throw, and share one validator', () => {
    const catalog = new Catalog();
    const schema = { $id: 'https://example.com/user-created.json', ...UserCreated };
    catalog.declare('a', [payments], schema);
    catalog.declare('b', [payments], { ...schema });
    expect(catalog.declaration('b')!.validate).toBe(catalog.declaration('a')!.validate);
  });

  test('ajv formats are on: email and date-time are checked', () => {
    const catalog = new Catalog();
    catalog.declare('user-created', [payments], UserCreated);
    const { validate } = catalog.declaration('user-created')!;
    expect(() => catalog.check('user-created', validate, { user_id: 'u1', email: 'a@example.com' })).not.toThrow();
    expect(() =>
      catalog.check('user-created', validate, { user_id: 'u1', email: 'a@example.com', created_at: '2024-05-01T12:00:00Z' }),
    ).not.toThrow();

    const badEmail = validationError(() => catalog.check('user-created', validate, { user_id: 'u1', email: 'nope' }));
    expect(badEmail.errors).toEqual([expect.objectContaining({ instancePath: '/email', keyword: 'format', params: { format: 'email' } })]);

    const badTime = validationError(() =>
      catalog.check('user-created', validate, { user_id: 'u1', email: 'a@example.com', created_at: 'yesterday' }),
    );
    expect(badTime.errors[0]).toMatchObject({ instancePath: '/created_at', params: { format: 'date-time' } });
  });

  test('a ValidationError carries every ajv error, the type, and a message naming the fields', () => {
    const catalog = new Catalog();
    catalog.declare('user-created', [payments], UserCreated);
    const { validate } = catalog.declaration('user-created')!;
    const error = validationError(() => catalog.check('user-created', validate, { email: 'nope', extra: 1 }));
    expect(error.type).toBe('user-created');
    expect(error.name).toBe('ValidationError');
    expect(error.errors.map((e) => e.keyword).sort()).toEqual(['additionalProperties', 'format', 'required']);
    expect(error.message).toContain('"user-created"');
    expect(error.message).toContain('user_id');
    expect(error.message).toContain('/email');
  });

  test('the errors of one failure are not overwritten by the next validation', () => {
    const catalog = new Catalog();
    catalog.declare('user-created', [payments], UserCreated);
    const { validate } = catalog.declaration('user-created')!;
    const first = validationError(() => catalog.check('user-created', validate, { user_id: 'u1', email: 'nope' }));
    validationError(() => catalog.check('user-created', validate, {}));
    catalog.check('user-created', validate, { user_id: 'u1', email: 'a@example.com' });
    expect(first.errors).toEqual([expect.objectContaining({ instancePath: '/email' })]);
  });

  test('an invalid schema is a ConfigError naming the event type', () => {
    const catalog = new Catalog();
    const broken = { type: 'objekt' } as unknown as JSONSchema;
    expect(() => catalog.declare('user-created', [payments], broken)).toThrow(ConfigError);
    expect(() => catalog.declare('user-created', [payments], broken)).toThrow(/"user-created".*not a valid JSON Schema/);
    expect(() => catalog.subscribe('user-created', noop, { type: 'object', required: 'user_id' } as unknown as JSONSchema)).toThrow(
      ConfigError,
    );
    expect(catalog.declaration('user-created')).toBeUndefined();
  });

  test('a schema that is not an object is a ConfigError', () => {
    const catalog = new Catalog();
    expect(() => catalog.declare('x', [payments], 'string' as unknown as JSONSchema)).toThrow(ConfigError);
    expect(() => catalog.declare('x', [payments], null as unknown as JSONSchema)).toThrow(ConfigError);
  });

  test.each([[''], ['  '], [undefined], [42]])('the event type %j is a ConfigError', (type) => {
    const catalog = new Catalog();
    expect(() => catalog.declare(type as string, [payments], undefined)).toThrow(ConfigError);
    expect(() => catalog.subscribe(type as string, noop, undefined)).toThrow(ConfigError);
  });
});

describe('Catalog: subscriptions', () => {
  test('subscribers run in registration order, keyed <type>#<n> by default', () => {
    const catalog = new Catalog();
    const first = jest.fn();
    const second = jest.fn();
    catalog.subscribe('user-created', first, undefined);
    catalog.subscribe('user-created', second, undefined);
    expect(catalog.subscribers('user-created').map((s) => [s.key, s.handler])).toEqual([
      ['user-created#1', first],
      ['user-created#2', second],
    ]);
    expect(catalog.subscribers('order-placed')).toEqual([]);
  });

  test('a name keys the subscription (the inbox records completion under it)', () => {
    const catalog = new Catalog();
    catalog.subscribe('user-created', noop, undefined, 'create-customer');
    expect(catalog.subscribers('user-created')[0]!.key).toBe('create-customer');
  });

  test('a duplicate handler name for one type is a ConfigError naming it; the first stays subscribed', () => {
    const catalog = new Catalog();
    const first = jest.fn();
    catalog.subscribe('user-created', first, undefined, 'create-customer');
    expect(() => catalog.subscribe('user-created', noop, undefined, 'create-customer')).toThrow(ConfigError);
    expect(() => catalog.subscribe('user-created', noop, undefined, 'create-customer')).toThrow(/"create-customer"/);
    expect(catalog.subscribers('user-created').map((s) => s.handler)).toEqual([first]);
  });

  test('the same name under another type is fine', () => {
    const catalog = new Catalog();
    catalog.subscribe('user-created', noop, undefined, 'audit');
    expect(() => catalog.subscribe('user-deleted', noop, undefined, 'audit')).not.toThrow();
  });

  test('a handler that is not a function is a ConfigError', () => {
    const catalog = new Catalog();
    expect(() => catalog.subscribe('user-created', 'nope' as never, undefined)).toThrow(ConfigError);
  });

  test('unsubscribe removes that subscription only, and twice is harmless', () => {
    const catalog = new Catalog();
    const first = jest.fn();
    const second = jest.fn();
    const unsubscribeFirst = catalog.subscribe('user-created', first, undefined);
    catalog.subscribe('user-created', second, undefined);
    unsubscribeFirst();
    unsubscribeFirst();
    expect(catalog.subscribers('user-created').map((s) => s.handler)).toEqual([second]);
  });

  test('after unsubscribe the name is free again, and a removed default key is never given to another handler', () => {
    const catalog = new Catalog();
    const unsubscribeNamed = catalog.subscribe('user-created', noop, undefined, 'create-customer');
    const unsubscribeDefault = catalog.subscribe('user-created', noop, undefined);
    const removedKey = catalog.subscribers('user-created')[1]!.key;
    unsubscribeNamed();
    unsubscribeDefault();
    expect(() => catalog.subscribe('user-created', noop, undefined, 'create-customer')).not.toThrow();
    catalog.subscribe('user-created', noop, undefined);
    const keys = catalog.subscribers('user-created').map((s) => s.key);
    expect(keys).toHaveLength(2);
    expect(keys).toContain('create-customer');
    expect(keys).not.toContain(removedKey);
  });

  test('a subscription schema validates incoming data', () => {
    const catalog = new Catalog();
    catalog.subscribe('user-created', noop, UserCreated);
    const [subscription] = catalog.subscribers('user-created');
    expect(() => catalog.check('user-created', subscription!.validate, { user_id: 'u1', email: 'a@example.com' })).not.toThrow();
    expect(() => catalog.check('user-created', subscription!.validate, { user_id: 'u1' })).toThrow(ValidationError);
  });
});

/**
 * The schema-compatibility engine: is every value valid under the producer's schema also valid
 * under the consumer's? A table of pairs, compatible and not; each incompatible pair names the
 * field (a JSON pointer into the payload) and whether the reason is "cannot prove". Every
 * "compatible" row is also checked against ajv on sample values the producer's schema accepts.
 */
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { JsonDocument } from '../../src/contracts/json-document.js';
import { compareSchemas } from '../../src/contracts/schema-compat.js';

const compare = (producer: unknown, consumer: unknown, documents?: { producer: unknown; consumer: unknown }) =>
  compareSchemas(producer, consumer, {
    producer: new JsonDocument(documents?.producer ?? producer),
    consumer: new JsonDocument(documents?.consumer ?? consumer),
  });

const obj = (properties: Record<string, unknown>, required: string[] = [], extra: Record<string, unknown> = {}) => ({
  type: 'object',
  properties,
  required,
  additionalProperties: false,
  ...extra,
});

type Row = [name: string, producer: unknown, consumer: unknown, samples?: unknown[]];

const compatible: Row[] = [
  ['the same schema', obj({ email: { type: 'string' } }, ['email']), obj({ email: { type: 'string' } }, ['email']), [{ email: 'a' }]],
  ['the consumer takes anything', obj({ id: { type: 'string' } }, ['id']), {}, [{ id: 'x' }]],
  ['an optional field of the consumer the producer always sends', obj({ id: { type: 'string' }, note: { type: 'string' } }, ['id', 'note']), obj({ id: { type: 'string' }, note: { type: 'string' } }, ['id']), [{ id: 'a', note: 'b' }]],
  ['the consumer ignores a field (no additionalProperties)', obj({ id: { type: 'string' }, extra: { type: 'number' } }, ['id', 'extra']), { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] }, [{ id: 'a', extra: 1 }]],
  ['integer into number', { type: 'integer' }, { type: 'number' }, [1, -3]],
  ['a narrower range', { type: 'integer', minimum: 1, maximum: 10 }, { type: 'integer', minimum: 0, maximum: 100 }, [1, 10]],
  ['exclusive bounds on integers', { type: 'integer', exclusiveMinimum: 0 }, { type: 'integer', minimum: 1 }, [1, 2]],
  ['multiples of 10 are multiples of 5', { type: 'number', multipleOf: 10 }, { type: 'number', multipleOf: 5 }, [20]],
  ['a narrower enum', { enum: ['a', 'b'] }, { type: 'string', enum: ['a', 'b', 'c'] }, ['a', 'b']],
  ['a const the consumer\'s pattern takes', { const: 'EUR' }, { type: 'string', pattern: '^[A-Z]{3}$' }, ['EUR']],
  ['string lengths within', { type: 'string', minLength: 2, maxLength: 5 }, { type: 'string', minLength: 1, maxLength: 10 }, ['ab']],
  ['the same format', { type: 'string', format: 'email' }, { type: 'string', format: 'email' }, ['a@b.co']],
  ['email is an idn-email', { type: 'string', format: 'email' }, { type: 'string', format: 'idn-email' }, ['a@b.co']],
  ['nested objects', obj({ address: obj({ city: { type: 'string' } }, ['city']) }, ['address']), obj({ address: obj({ city: { type: 'string' } }, ['city']) }, ['address']), [{ address: { city: 'Oslo' } }]],
  ['arrays of fitting items', { type: 'array', items: { type: 'integer' }, minItems: 1 }, { type: 'array', items: { type: 'number' } }, [[1]]],
  ['unique items', { type: 'array', items: { type: 'string' }, uniqueItems: true }, { type: 'array', uniqueItems: true }, [['a']]],
  ['a producer anyOf whose branches each fit', { anyOf: [{ type: 'string' }, { type: 'integer' }] }, { type: ['string', 'number'] }, ['a', 1]],
  ['a producer oneOf beside its type', { type: 'string', oneOf: [{ minLength: 3 }, { maxLength: 1 }] }, { type: 'string' }, ['abc']],
  ['a consumer anyOf with a fitting branch', { type: 'string', format: 'email' }, { anyOf: [{ type: 'integer' }, { type: 'string' }] }, ['a@b.co']],
  ['a consumer oneOf told apart by a discriminator', obj({ kind: { const: 'card' }, last4: { type: 'string' } }, ['kind', 'last4']), {
    oneOf: [obj({ kind: { const: 'card' }, last4: { type: 'string' } }, ['kind', 'last4']), obj({ kind: { const: 'iban' }, iban: { type: 'string' } }, ['kind', 'iban'])],
  }, [{ kind: 'card', last4: '1234' }]],
  ['a producer allOf combined', { allOf: [obj({ id: { type: 'string' } }, ['id']), { required: ['id'] }] }, { type: 'object', required: ['id'] }, [{ id: 'a' }]],
  ['a consumer allOf', obj({ id: { type: 'string' }, n: { type: 'integer' } }, ['id', 'n']), { allOf: [{ type: 'object', required: ['id'] }, { properties: { n: { type: 'number' } } }] }, [{ id: 'a', n: 1 }]],
  ['the producer never sends a field the consumer constrains', obj({ id: { type: 'string' } }, ['id']), { type: 'object', properties: { id: { type: 'string' }, gone: { type: 'integer' } } }, [{ id: 'a' }]],
  ['an identical keyword without its own rule', { type: 'string', not: { const: 'x' } }, { type: 'string', not: { const: 'x' } }, ['y']],
  ['a consumer "not" the producer never meets', { type: 'string' }, { not: { type: 'number' } }, ['y']],
  ['draft 4 boolean exclusiveMinimum', { type: 'number', minimum: 0, exclusiveMinimum: true }, { type: 'number', exclusiveMinimum: 0 }], // (ajv 8 compiles no draft 4 schema: no samples)
];

test.each(compatible)('compatible: %s', (_name, producer, consumer, samples = []) => {
  expect(compare(producer, consumer)).toEqual([]);
  if (samples.length === 0) return;
  // What the check proves holds on values the producer's schema accepts.
  const ajv = new Ajv({ strict: false, logger: false });
  addFormats(ajv);
  const [p, c] = [ajv.compile(producer as object), ajv.compile(consumer as object)];
  for (const sample of samples) {
    expect(p(sample)).toBe(true);
    expect(c(sample)).toBe(true);
  }
});

type Bad = [name: string, producer: unknown, consumer: unknown, pointer: string, reason: RegExp, cannotProve: boolean];

const incompatible: Bad[] = [
  ['a field the consumer requires, optional for the producer', obj({ email: { type: 'string' } }), obj({ email: { type: 'string' } }, ['email']), '/email', /the consumer requires this field; the producer may leave it out/, false],
  ['a field the producer dropped', obj({ id: { type: 'string' } }, ['id']), obj({ id: { type: 'string' }, email: { type: 'string' } }, ['id', 'email']), '/email', /never sends it/, false],
  ['another type', obj({ age: { type: 'string' } }, ['age']), obj({ age: { type: 'integer' } }, ['age']), '/age', /the producer allows string; the consumer requires integer/, false],
  ['number into integer', { type: 'number' }, { type: 'integer' }, '', /allows number; the consumer requires integer/, false],
  ['a producer without type', {}, { type: 'object' }, '', /allows any type here/, false],
  ['a wider enum', { enum: ['a', 'b', 'z'] }, { enum: ['a', 'b'] }, '', /the producer may send "z", which the consumer refuses/, false],
  ['an enum of the consumer, none on the producer', { type: 'string' }, { enum: ['a'] }, '', /the consumer accepts only "a"/, false],
  ['a field the closed consumer does not know', obj({ id: { type: 'string' }, extra: { type: 'string' } }, ['id']), obj({ id: { type: 'string' } }, ['id']), '/extra', /additionalProperties: false/, false],
  ['an open producer into a closed consumer', { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] }, obj({ id: { type: 'string' } }, ['id']), '/*', /the producer allows fields besides "id"/, false],
  ['an optional field the open producer does not describe', { type: 'object', properties: { id: { type: 'string' } } }, { type: 'object', properties: { note: { type: 'string' } } }, '/note', /allows any type here/, false],
  ['nested: a city that may be a number', obj({ address: obj({ city: { type: ['string', 'number'] } }, ['city']) }, ['address']), obj({ address: obj({ city: { type: 'string' } }, ['city']) }, ['address']), '/address/city', /allows number/, false],
  ['array items', { type: 'array', items: { type: 'string' } }, { type: 'array', items: { type: 'integer' } }, '/*', /allows string/, false],
  ['array items of objects', { type: 'array', items: obj({ sku: { type: 'string' } }) }, { type: 'array', items: obj({ sku: { type: 'string' } }, ['sku']) }, '/*/sku', /requires this field/, false],
  ['more items than the consumer takes', { type: 'array', maxItems: 20 }, { type: 'array', maxItems: 10 }, '', /at most 10 items; the producer allows 20/, false],
  ['repeats', { type: 'array' }, { type: 'array', uniqueItems: true }, '', /unique items/, false],
  ['a lower bound', { type: 'integer', minimum: 0 }, { type: 'integer', minimum: 1 }, '', /requires >= 1; the producer allows >= 0/, false],
  ['no upper bound', { type: 'number' }, { type: 'number', exclusiveMaximum: 100 }, '', /requires < 100; the producer sets no upper bound/, false],
  ['multiples', { type: 'number', multipleOf: 3 }, { type: 'number', multipleOf: 2 }, '', /multiples of 2/, false],
  ['a longer string', { type: 'string', maxLength: 300 }, { type: 'string', maxLength: 255 }, '', /at most 255 characters/, false],
  ['a format the producer does not promise', { type: 'string' }, { type: 'string', format: 'email' }, '', /requires format "email"; the producer allows any string/, false],
  ['a pattern the producer does not promise', { type: 'string' }, { type: 'string', pattern: '^[a-z]+$' }, '', /matching/, false],
  ['a producer anyOf with a branch that does not fit', { anyOf: [{ type: 'string' }, { type: 'boolean' }] }, { type: 'string' }, '', /allows boolean/, false],
  ['another format', { type: 'string', format: 'uri' }, { type: 'string', format: 'email' }, '', /producer's format "uri" may allow other values/, true],
  ['another pattern', { type: 'string', pattern: '^[a-z]+$' }, { type: 'string', pattern: '^[a-c]+$' }, '', /matching/, true],
  ['a keyword without a rule, not on the producer', { type: 'object' }, { type: 'object', propertyNames: { maxLength: 3 } }, '', /"propertyNames" is not one the check compares/, true],
  ['a consumer oneOf whose branches may overlap', { type: 'string' }, { oneOf: [{ type: 'string' }, { type: 'string', maxLength: 3 }] }, '', /may match branches 1 and 2/, true],
  ['a consumer anyOf no branch of which takes everything', { type: ['string', 'integer'] }, { anyOf: [{ type: 'string' }, { type: 'integer' }] }, '', /no single branch of the consumer's anyOf/, true],
  ['a producer tuple', { type: 'array', prefixItems: [{ type: 'string' }] }, { type: 'array', items: { type: 'string' } }, '', /tuple/, true],
  ['unevaluatedProperties', { type: 'object' }, { type: 'object', unevaluatedProperties: false }, '', /"unevaluatedProperties"/, true],
  ['a reference that does not resolve', { $ref: '#/nowhere' }, { type: 'string' }, '', /\$ref #\/nowhere does not resolve/, true],
];

test.each(incompatible)('not compatible: %s', (_name, producer, consumer, pointer, reason, cannotProve) => {
  const findings = compare(producer, consumer);
  expect(findings).toContainEqual({ pointer, reason: expect.stringMatching(reason), cannotProve });
});

test('references resolve in each side\'s own document, and recursive schemas are compared field by field', () => {
  const node = (value: unknown) => ({
    type: 'object',
    properties: { value, children: { type: 'array', items: { $ref: '#/components/schemas/Node' } } },
    required: ['value'],
  });
  const producer = { components: { schemas: { Node: node({ type: 'integer' }) } } };
  const consumer = { components: { schemas: { Node: node({ type: 'number' }) } } };
  const ref = { $ref: '#/components/schemas/Node' };
  expect(compare(ref, ref, { producer, consumer })).toEqual([]);
  expect(compare(ref, ref, { producer: consumer, consumer: producer })).toEqual([
    { pointer: '/value', reason: expect.stringMatching(/allows number; the consumer requires integer/), cannotProve: false },
  ]);
});

test('a field name with "/" or "~" is escaped in the pointer', () => {
  expect(compare(obj({ 'a/b~c': { type: 'string' } }), obj({ 'a/b~c': { type: 'string' } }, ['a/b~c']))).toEqual([
    { pointer: '/a~1b~0c', reason: expect.any(String), cannotProve: false },
  ]);
});

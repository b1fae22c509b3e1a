import {
  addressedBodies,
  addressedTo,
  BATCH_CONTENT_TYPE,
  batchBuffer,
  type CloudEvent,
  createEvent,
  detectMode,
  type Headers,
  parseBatch,
  parseStructured,
  STRUCTURED_CONTENT_TYPE,
  toStructuredBody,
} from '../../src/protocol/cloudevents.js';
import { ProtocolError } from '../../src/protocol/protocol-error.js';
import { EventsError } from '../../src/errors/index.js';

const EVENT = {
  specversion: '1.0',
  id: 'evt-1',
  source: 'users',
  type: 'user-created',
  time: '2024-05-01T12:00:00.000Z',
  datacontenttype: 'application/json',
  data: { user_id: 'u1', email: 'a@example.com' },
};

const structured: Headers = { 'content-type': STRUCTURED_CONTENT_TYPE };
const batch: Headers = { 'content-type': BATCH_CONTENT_TYPE };

const binaryHeaders = (extra: Record<string, string> = {}): Headers => ({
  'content-type': 'application/json',
  'ce-specversion': '1.0',
  'ce-id': 'evt-b',
  'ce-source': 'users',
  'ce-type': 'user-created',
  ...extra,
});

/** Parses a body as the receiver would: detect the mode from the headers, then parse (a batch's first invalid event throws). */
function parse(headers: Headers, body: string | object): CloudEvent[] {
  const text = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  if (detectMode(headers) === 'structured') return [parseStructured(text)];
  return parseBatch(text).map((item) => {
    if (item.event === undefined) throw item.invalid;
    return item.event;
  });
}

/** The ProtocolError thrown by `run`, or a test failure. */
function refusal(run: () => unknown): ProtocolError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return error as ProtocolError;
  }
  throw new Error('expected a ProtocolError, nothing was thrown');
}

describe('createEvent / toStructuredBody', () => {
  test('builds a CloudEvents 1.0 envelope with a unique id, the source, type, time and JSON data', () => {
    const a = createEvent('users', 'user-created', { n: 1 });
    const b = createEvent('users', 'user-created', { n: 1 });
    expect(a).toMatchObject({ specversion: '1.0', source: 'users', type: 'user-created', datacontenttype: 'application/json', data: { n: 1 } });
    expect(a.id).not.toBe(b.id);
    expect(Number.isNaN(Date.parse(a.time!))).toBe(false);
  });

  test('what we send in structured mode parses back to the same event', () => {
    const event = createEvent('users', 'user-created', { user_id: 'u1' });
    expect(parse(structured, toStructuredBody(event))).toEqual([event]);
  });
});

describe('addressedBodies / batchBuffer', () => {
  const ANYONE = '*subscribers*';

  test('one recipient: the same bytes as the body addressed after serialising, the recipient first', () => {
    const event = createEvent('users', 'user-created', { user_id: 'u1', name: 'Zoë 🚀' }, { partitionkey: 'k' });
    const [body] = addressedBodies(event, ['billing'], ANYONE);
    expect(body).toBe(addressedTo(toStructuredBody(event), 'billing'));
    expect(JSON.parse(body!)).toEqual({ recipient: 'billing', ...event });
    expect(Object.keys(JSON.parse(body!))[0]).toBe('recipient');
  });

  test('several recipients each get their own; subscribers share the body that names none', () => {
    const event = createEvent('users', 'user-created', { n: 1 });
    const bodies = addressedBodies(event, ['billing', ANYONE, 'mail'], ANYONE);
    expect(bodies.map((body) => JSON.parse(body).recipient)).toEqual(['billing', undefined, 'mail']);
    expect(bodies[1]).toBe(toStructuredBody(event));
    expect(addressedBodies(event, [ANYONE], ANYONE)).toEqual([toStructuredBody(event)]);
  });

  test('a batch is its bodies joined into a JSON array, byte for byte, multi-byte characters included', () => {
    const bodies = ['{"a":"é"}', '{"b":"🚀"}', '{"c":1}'];
    expect(batchBuffer(bodies).equals(Buffer.from(`[${bodies.join(',')}]`))).toBe(true);
    expect(batchBuffer(['{}']).toString()).toBe('[{}]');
    expect(batchBuffer([]).toString()).toBe('[]');
  });
});

describe('detectMode', () => {
  test.each([
    ['application/cloudevents+json; charset=utf-8', 'structured'],
    ['application/cloudevents+json', 'structured'],
    ['Application/CloudEvents+JSON ; charset=UTF-8', 'structured'],
    ['application/cloudevents-batch+json; charset=utf-8', 'batch'],
  ])('content type %j is %s mode', (contentType, mode) => {
    expect(detectMode({ 'content-type': contentType })).toBe(mode);
  });

  test.each([
    ['application/json', binaryHeaders()],
    ['application/json; charset=utf-8', binaryHeaders({ 'content-type': 'application/json; charset=utf-8' })],
    ['text/plain', binaryHeaders({ 'content-type': 'text/plain' })],
    ['no content type', (({ 'content-type': _omit, ...rest }) => rest)(binaryHeaders())],
    ['only an extension header', { 'content-type': 'application/json', 'ce-traceparent': '00-abc-01' }],
  ])('binary mode (ce-* headers, %s) is refused with 415 saying why and what to send', (_what, headers) => {
    const error = refusal(() => detectMode(headers));
    expect(error.status).toBe(415);
    expect(error.code).toBe('binary_mode_refused');
    expect(error.message).toMatch(/outside the webhook signature/);
    expect(error.message).toContain('application/cloudevents+json');
    expect(error.message).toContain('application/cloudevents-batch+json');
  });

  test('structured and batch content types win over ce-* headers, which are never read', () => {
    expect(detectMode({ ...binaryHeaders(), 'content-type': STRUCTURED_CONTENT_TYPE })).toBe('structured');
    expect(detectMode({ ...binaryHeaders(), 'content-type': BATCH_CONTENT_TYPE })).toBe('batch');
  });

  test('a duplicated content-type with different values is ambiguous: 415', () => {
    const error = refusal(() => detectMode({ 'content-type': [STRUCTURED_CONTENT_TYPE, BATCH_CONTENT_TYPE] }));
    expect(error.status).toBe(415);
  });

  test('text/plain without ce-* headers is 415 and says what to send', () => {
    const error = refusal(() => detectMode({ 'content-type': 'text/plain' }));
    expect(error.status).toBe(415);
    expect(error.message).toContain('text/plain');
    expect(error.message).toContain('application/cloudevents+json');
  });

  test('no content type and no ce-* headers is 415', () => {
    const error = refusal(() => detectMode({}));
    expect(error.status).toBe(415);
    expect(error.message).toContain('(none)');
  });

  test('plain JSON without ce-* headers is 400: not a CloudEvent, and says how to send one', () => {
    const error = refusal(() => detectMode({ 'content-type': 'application/json' }));
    expect(error.status).toBe(400);
    expect(error.message).toContain('application/cloudevents+json');
  });

  test('ProtocolError is an EventsError with a constant name', () => {
    const error = refusal(() => detectMode({}));
    expect(error).toBeInstanceOf(EventsError);
    expect(error.name).toBe('ProtocolError');
  });
});

describe('parseEvents: structured mode', () => {
  test('parses the whole event from the body', () => {
    expect(parse(structured, EVENT)).toEqual([EVENT]);
  });

  test('a missing datacontenttype means JSON', () => {
    const { datacontenttype: _omit, ...event } = EVENT;
    expect(parse(structured, event)).toEqual([event]);
  });

  test('a JSON-flavoured datacontenttype with parameters is accepted', () => {
    const event = { ...EVENT, datacontenttype: 'application/vnd.acme.user+json; charset=utf-8' };
    expect(parse(structured, event)).toEqual([event]);
  });

  test('keeps extension attributes', () => {
    const event = { ...EVENT, traceparent: '00-abc-def-01', subject: 'u1' };
    expect(parse(structured, event)[0]).toMatchObject({ traceparent: '00-abc-def-01', subject: 'u1' });
  });

  test('datacontenttype text/xml is 415 and names it', () => {
    const error = refusal(() => parse(structured, { ...EVENT, datacontenttype: 'text/xml' }));
    expect(error.status).toBe(415);
    expect(error.message).toContain('text/xml');
  });

  test('data_base64 is 415', () => {
    const { data: _omit, ...rest } = EVENT;
    const error = refusal(() => parse(structured, { ...rest, data_base64: Buffer.from('{}').toString('base64') }));
    expect(error.status).toBe(415);
    expect(error.message).toContain('data_base64');
  });

  test('bad JSON is 400 and says the body is not valid JSON', () => {
    const error = refusal(() => parse(structured, '{"specversion": "1.0", '));
    expect(error.status).toBe(400);
    expect(error.message).toMatch(/not valid JSON/);
  });

  test.each([['id'], ['source'], ['type']])('a missing %s is 400 and names the attribute', (name) => {
    const event: Record<string, unknown> = { ...EVENT };
    delete event[name];
    const error = refusal(() => parse(structured, event));
    expect(error.status).toBe(400);
    expect(error.message).toContain(`"${name}"`);
  });

  test.each([['id'], ['source'], ['type']])('an empty or non-string %s is 400', (name) => {
    expect(refusal(() => parse(structured, { ...EVENT, [name]: '' })).status).toBe(400);
    expect(refusal(() => parse(structured, { ...EVENT, [name]: 42 })).status).toBe(400);
  });

  test('specversion 0.3 is 400 and says only 1.0 is supported', () => {
    const error = refusal(() => parse(structured, { ...EVENT, specversion: '0.3' }));
    expect(error.status).toBe(400);
    expect(error.message).toContain('0.3');
    expect(error.message).toContain('"1.0"');
  });

  test('a missing specversion is 400 and says so', () => {
    const { specversion: _omit, ...event } = EVENT;
    const error = refusal(() => parse(structured, event));
    expect(error.status).toBe(400);
    expect(error.message).toContain('specversion');
  });

  test('a time that is not a timestamp is 400', () => {
    const error = refusal(() => parse(structured, { ...EVENT, time: 'yesterday' }));
    expect(error.status).toBe(400);
    expect(error.message).toContain('"time"');
  });

  test.each([['[]'], ['"text"'], ['null'], ['42']])('a body %s that is not a JSON object is 400', (body) => {
    const error = refusal(() => parse(structured, body));
    expect(error.status).toBe(400);
    expect(error.message).toMatch(/JSON object/);
  });
});

describe('parseEvents: batch mode', () => {
  test('parses every event, in order', () => {
    const second = { ...EVENT, id: 'evt-2', data: { user_id: 'u2' } };
    expect(parse(batch, [EVENT, second])).toEqual([EVENT, second]);
  });

  test('a batch body that is not an array is 400', () => {
    const error = refusal(() => parse(batch, EVENT));
    expect(error.status).toBe(400);
    expect(error.message).toMatch(/array/);
  });

  test('an invalid member is refused and the message says which one', () => {
    const { id: _omit, ...noId } = EVENT;
    const error = refusal(() => parse(batch, [EVENT, noId]));
    expect(error.status).toBe(400);
    expect(error.message).toContain('event 1 of the batch');
    expect(error.message).toContain('"id"');
  });

  test('a member with data_base64 is 415', () => {
    const error = refusal(() => parse(batch, [EVENT, { ...EVENT, id: 'x', data_base64: 'e30=' }]));
    expect(error.status).toBe(415);
  });
});

describe('prototype pollution', () => {
  afterEach(() => {
    // Whatever happened, nothing may have leaked onto every object.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  const cases: Array<[string, Headers, string]> = [
    [
      'at the top of a structured event',
      structured,
      `{"specversion":"1.0","id":"e","source":"s","type":"t","__proto__":{"polluted":true}}`,
    ],
    ['in structured data', structured, `{"specversion":"1.0","id":"e","source":"s","type":"t","data":{"__proto__":{"polluted":true}}}`],
    [
      'deep in structured data',
      structured,
      `{"specversion":"1.0","id":"e","source":"s","type":"t","data":{"a":[1,{"b":{"__proto__":{"polluted":true}}}]}}`,
    ],
    ['in a batch member', batch, `[{"specversion":"1.0","id":"e","source":"s","type":"t","data":{"__proto__":{"polluted":true}}}]`],
    [
      'as constructor.prototype',
      structured,
      `{"specversion":"1.0","id":"e","source":"s","type":"t","data":{"constructor":{"prototype":{"polluted":true}}}}`,
    ],
    [
      'spelled with a JSON unicode escape',
      structured,
      `{"specversion":"1.0","id":"e","source":"s","type":"t","data":{"\\u005f_proto__":{"polluted":true}}}`,
    ],
    [
      'as constructor.prototype spelled with a JSON unicode escape',
      structured,
      `{"specversion":"1.0","id":"e","source":"s","type":"t","data":{"constructor":{"\\u0070rototype":{"polluted":true}}}}`,
    ],
  ];

  test.each(cases)('a "__proto__" key %s is 400 and names the key', (_where, headers, body) => {
    const error = refusal(() => parse(headers, body));
    expect(error.status).toBe(400);
    expect(error.message).toMatch(/forbidden key "(__proto__|constructor)"/);
  });

  test('ordinary keys that merely contain the words pass', () => {
    const data = { proto: 1, prototype: 'p', constructor: 'c', note: '__proto__ in a string value is fine' };
    const [event] = parse(structured, { ...EVENT, data });
    expect(event?.data).toEqual(data);
  });
});

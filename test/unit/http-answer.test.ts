import { batchResults, networkResult, readBatchResults, singleResult } from '../../src/backends/http/answer.js';

const noHeaders = (): undefined => undefined;
const headers =
  (values: Record<string, string>) =>
  (name: string): string | undefined =>
    values[name];

describe('singleResult', () => {
  test('a 2xx with our receipt is delivered with a receipt', () => {
    expect(singleResult(200, noHeaders, JSON.stringify({ status: 'duplicate', id: 'e1' }), 1)).toEqual({
      outcome: 'delivered',
      status: 200,
      attempts: 1,
      receipt: true,
    });
  });

  test.each([
    ['an empty body', ''],
    ['no body read', undefined],
    ['an HTML page', '<html>ok</html>'],
    ['JSON without an id', JSON.stringify({ status: 'delivered' })],
    ['broken JSON', '{"status":'],
  ])('a 2xx with %s is delivered without a receipt', (_, body) => {
    expect(singleResult(204, noHeaders, body, 2)).toEqual({ outcome: 'delivered', status: 204, attempts: 2, receipt: false });
  });

  test.each([400, 410, 413, 415, 422])('%i is refused', (status) => {
    expect(singleResult(status, noHeaders, 'no', 1)).toMatchObject({ outcome: 'refused', status, error: `HTTP ${status}: no` });
  });

  test('a handler\'s NonRetryableError with another 4xx is refused', () => {
    const body = JSON.stringify({ error: 'rejected_by_handler', message: 'no such user' });
    expect(singleResult(409, noHeaders, body, 1)).toMatchObject({ outcome: 'refused', status: 409 });
  });

  test('rejected_by_handler on a 5xx is still retried', () => {
    const body = JSON.stringify({ error: 'rejected_by_handler' });
    expect(singleResult(500, noHeaders, body, 1)).toMatchObject({ outcome: 'retry', status: 500 });
  });

  test.each([
    [401, true],
    [403, false],
    [404, false],
    [408, false],
    [429, true],
    [500, false],
    [502, true],
    [503, true],
    [504, true],
  ])('%i is retried later (target down: %s)', (status, targetDown) => {
    expect(singleResult(status, noHeaders, '', 4)).toEqual({ outcome: 'retry', status, error: `HTTP ${status}`, attempts: 4, targetDown });
  });

  test('Retry-After is read in seconds', () => {
    expect(singleResult(503, headers({ 'retry-after': '30' }), '', 1)).toMatchObject({ outcome: 'retry', retryAfterMs: 30_000 });
  });

  test('the error keeps only the start of a long body', () => {
    const result = singleResult(500, noHeaders, 'x'.repeat(10_000), 1);
    expect(result.error).toBe(`HTTP 500: ${'x'.repeat(300)}`);
  });
});

describe('networkResult', () => {
  test('is a retry with the whole target down', () => {
    expect(networkResult('ECONNREFUSED', 4)).toEqual({ outcome: 'retry', error: 'ECONNREFUSED', attempts: 4, targetDown: true });
  });
});

describe('batchResults', () => {
  const mixed = JSON.stringify({
    results: [
      { id: 'a', status: 200, receipt: 'delivered' },
      { id: 'b', status: 200, receipt: 'duplicate' },
      { id: 'c', status: 422, error: 'rejected_by_handler', message: 'bad order' },
      { id: 'd', status: 503, error: 'inbox_unavailable', message: 'try later', retryAfter: 7 },
      { id: 'e', status: 500, error: 'handler_failed', message: 'boom' },
      { status: 400, error: 'invalid_data', message: 'not an event' },
      { id: 'g', status: 404, error: 'no_subscriber', message: 'nobody here' },
      { id: 'h', status: 409, error: 'rejected_by_handler', message: 'conflict' },
    ],
  });

  test('a results array is read per event, in order', () => {
    const results = batchResults(503, headers({ 'retry-after': '3' }), mixed, 8, 1);
    expect(results).toEqual([
      { outcome: 'delivered', status: 200, attempts: 1, receipt: true },
      { outcome: 'delivered', status: 200, attempts: 1, receipt: true },
      { outcome: 'refused', status: 422, error: 'HTTP 422: rejected_by_handler: bad order', attempts: 1, targetDown: false, retryAfterMs: 3000 },
      { outcome: 'retry', status: 503, error: 'HTTP 503: inbox_unavailable: try later', attempts: 1, targetDown: true, retryAfterMs: 7000 },
      { outcome: 'retry', status: 500, error: 'HTTP 500: handler_failed: boom', attempts: 1, targetDown: false, retryAfterMs: 3000 },
      { outcome: 'refused', status: 400, error: 'HTTP 400: invalid_data: not an event', attempts: 1, targetDown: false, retryAfterMs: 3000 },
      { outcome: 'retry', status: 404, error: 'HTTP 404: no_subscriber: nobody here', attempts: 1, targetDown: false, retryAfterMs: 3000 },
      { outcome: 'refused', status: 409, error: 'HTTP 409: rejected_by_handler: conflict', attempts: 1, targetDown: false, retryAfterMs: 3000 },
    ]);
  });

  test('without a retry-after header, only the items that ask for a wait carry one', () => {
    const results = batchResults(503, noHeaders, mixed, 8, 1);
    expect(results.map((r) => r.retryAfterMs)).toEqual([undefined, undefined, undefined, 7000, undefined, undefined, undefined, undefined]);
  });

  test('a 415 without results: the peer does not read batches', () => {
    expect(batchResults(415, noHeaders, 'unsupported', 2, 1)).toEqual([
      { outcome: 'retry', status: 415, error: 'HTTP 415: unsupported', attempts: 1, batchUnsupported: true },
      { outcome: 'retry', status: 415, error: 'HTTP 415: unsupported', attempts: 1, batchUnsupported: true },
    ]);
  });

  test.each([400, 410, 413, 422])('a %i without results: the peer does not read batches', (status) => {
    const results = batchResults(status, noHeaders, JSON.stringify({ error: 'invalid_data' }), 3, 1);
    expect(results).toHaveLength(3);
    for (const result of results) expect(result).toMatchObject({ outcome: 'retry', status, batchUnsupported: true });
  });

  test('a 2xx without results: every event delivered, without a receipt', () => {
    expect(batchResults(204, noHeaders, '', 2, 1)).toEqual([
      { outcome: 'delivered', status: 204, attempts: 1, receipt: false },
      { outcome: 'delivered', status: 204, attempts: 1, receipt: false },
    ]);
    expect(batchResults(200, noHeaders, undefined, 2, 1)).toEqual([
      { outcome: 'delivered', status: 200, attempts: 1, receipt: false },
      { outcome: 'delivered', status: 200, attempts: 1, receipt: false },
    ]);
  });

  test.each([
    [401, true],
    [404, false],
    [429, true],
    [500, false],
    [503, true],
  ])('a %i without results: the single-send rule for every event', (status, targetDown) => {
    const results = batchResults(status, headers({ 'retry-after': '2' }), 'busy', 2, 4);
    expect(results).toEqual([
      { outcome: 'retry', status, error: `HTTP ${status}: busy`, attempts: 4, targetDown, retryAfterMs: 2000 },
      { outcome: 'retry', status, error: `HTTP ${status}: busy`, attempts: 4, targetDown, retryAfterMs: 2000 },
    ]);
  });

  test('a rejected_by_handler answer without results is refused for every event (single rule)', () => {
    const results = batchResults(409, noHeaders, JSON.stringify({ error: 'rejected_by_handler' }), 2, 1);
    expect(results.map((r) => r.outcome)).toEqual(['refused', 'refused']);
  });

  test('each event gets its own result object', () => {
    const [first, second] = batchResults(204, noHeaders, '', 2, 1);
    expect(first).not.toBe(second);
  });

  const junk: [string, string][] = [
    ['too few results', JSON.stringify({ results: [{ status: 200 }] })],
    ['too many results', JSON.stringify({ results: [{ status: 200 }, { status: 200 }, { status: 200 }] })],
    ['a string status (the old bug)', JSON.stringify({ results: [{ status: 'delivered' }, { status: 200 }] })],
    ['a null item', JSON.stringify({ results: [null, { status: 200 }] })],
    ['a number item', JSON.stringify({ results: [200, { status: 200 }] })],
    ['a status out of range', JSON.stringify({ results: [{ status: 99 }, { status: 200 }] })],
    ['a fractional status', JSON.stringify({ results: [{ status: 200.5 }, { status: 200 }] })],
    ['results not an array', JSON.stringify({ results: { 0: { status: 200 } } })],
    ['a top-level array', JSON.stringify([{ status: 200 }, { status: 200 }])],
    ['broken JSON', '{"results": ['],
  ];

  test.each(junk)('%s: read as an answer without results', (_, body) => {
    expect(readBatchResults(body, 2)).toBeUndefined();
    expect(batchResults(200, noHeaders, body, 2, 1).map((r) => r.receipt)).toEqual([false, false]);
    expect(batchResults(415, noHeaders, body, 2, 1).map((r) => r.batchUnsupported)).toEqual([true, true]);
    expect(batchResults(503, noHeaders, body, 2, 1).map((r) => r.outcome)).toEqual(['retry', 'retry']);
  });

  test('with the batch\'s ids: results in the same order are read, an item without an id included', () => {
    const body = JSON.stringify({ results: [{ id: 'a', status: 200 }, { status: 400, error: 'invalid_data' }] });
    expect(batchResults(400, noHeaders, body, 2, 1, ['a', 'b']).map((r) => r.outcome)).toEqual(['delivered', 'refused']);
  });

  test('with the batch\'s ids: a result naming another event is not credited to this one', () => {
    const swapped = JSON.stringify({ results: [{ id: 'b', status: 200 }, { id: 'a', status: 500 }] });
    expect(readBatchResults(swapped, 2, ['a', 'b'])).toBeUndefined();
    expect(readBatchResults(swapped, 2)).toHaveLength(2);
    expect(batchResults(500, noHeaders, swapped, 2, 1, ['a', 'b']).map((r) => r.outcome)).toEqual(['retry', 'retry']);
  });

  test('an unreadable retryAfter on an item is ignored, not fatal', () => {
    const body = JSON.stringify({ results: [{ status: 503, retryAfter: 'soon' }, { status: 503, retryAfter: -1 }] });
    expect(batchResults(503, noHeaders, body, 2, 1).map((r) => r.retryAfterMs)).toEqual([undefined, undefined]);
  });
});

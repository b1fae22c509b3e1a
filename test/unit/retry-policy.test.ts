import { DEFAULTS } from '../../src/defaults.js';
import { failureHint } from '../../src/backends/http/failure-hints.js';
import { isFinalStatus, isRetryableStatus, isTargetDownStatus, parseRetryAfter } from '../../src/backends/http/answer.js';
import { backoffMs } from '../../src/send/retry-policy.js';

describe('isRetryableStatus', () => {
  test.each([408, 429, 500, 501, 502, 503, 504, 507, 599])('%i is retried', (status) => {
    expect(isRetryableStatus(status)).toBe(true);
  });

  test.each([400, 401, 403, 404, 405, 409, 410, 413, 415, 422, 451, 499])('%i is never retried in place', (status) => {
    expect(isRetryableStatus(status)).toBe(false);
  });

  test.each([200, 202, 204])('%i (delivered) is not a retry', (status) => {
    expect(isRetryableStatus(status)).toBe(false);
  });
});

describe('isFinalStatus: a verdict on the event itself, dead-lettered at once', () => {
  test.each([400, 410, 413, 415, 422])('%i is final', (status) => {
    expect(isFinalStatus(status)).toBe(true);
  });

  test.each([401, 403, 404, 405, 409, 451, 499])('%i is an operator’s to fix: redelivered from the outbox, not retried in place', (status) => {
    expect(isFinalStatus(status)).toBe(false);
    expect(isRetryableStatus(status)).toBe(false);
  });

  test.each([200, 408, 429, 500, 503])('%i is neither', (status) => {
    expect(isFinalStatus(status)).toBe(false);
  });
});

describe('failureHint', () => {
  const url = 'http://payments:3000/events';

  test('401 names both secret variables and the clocks; 404 names the type and the URL', () => {
    expect(failureHint(401, 'payments', url, 'user-created')?.message).toMatch(
      /^401 from payments: check EVENTS_SECRET \/ EVENTS_SERVICE_PAYMENTS_SECRET on both sides, and the clocks/,
    );
    expect(failureHint(404, 'payments', url, 'user-created')?.message).toMatch(
      /^404 from payments: is the receiver deployed and subscribed to user-created\? is the URL \(http:\/\/payments:3000\/events\) right\?/,
    );
  });

  test('a 404 concerns one type, a 401 the whole target; 5xx and network errors have no hint', () => {
    expect(failureHint(404, 'payments', url, 'a')).toMatchObject({ key: '404 a', scope: 'type' });
    expect(failureHint(401, 'payments', url, 'a')).toMatchObject({ key: '401', scope: 'target' });
    expect(failureHint(301, 'payments', url, 'a')).toMatchObject({ key: '3xx', scope: 'target' });
    expect(failureHint(500, 'payments', url, 'a')).toBeUndefined();
    expect(failureHint(undefined, 'payments', url, 'a')).toBeUndefined();
  });
});

describe('isTargetDownStatus', () => {
  test.each([401, 429, 502, 503, 504])('%i speaks of the whole target', (status) => {
    expect(isTargetDownStatus(status)).toBe(true);
  });

  test.each([400, 408, 500, 501])('%i speaks of one event', (status) => {
    expect(isTargetDownStatus(status)).toBe(false);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.UTC(2024, 4, 1, 12, 0, 0);

  test('delta-seconds give milliseconds', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter(' 5 ', now)).toBe(5_000);
  });

  test('an HTTP-date gives the time until then', () => {
    expect(parseRetryAfter(new Date(now + 30_000).toUTCString(), now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 01 May 2024 12:01:00 GMT', now)).toBe(60_000);
  });

  test('an HTTP-date in the past means now, not a negative wait', () => {
    expect(parseRetryAfter('Wed, 01 May 2024 11:00:00 GMT', now)).toBe(0);
  });

  test('absent, empty or unreadable is undefined', () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('', now)).toBeUndefined();
    expect(parseRetryAfter('   ', now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
  });

  test('uses the current time by default', () => {
    const wait = parseRetryAfter(new Date(Date.now() + 3_600_000).toUTCString());
    expect(wait).toBeGreaterThan(3_500_000);
    expect(wait).toBeLessThanOrEqual(3_600_000);
  });
});

describe('backoffMs', () => {
  const { baseDelayMs, maxDelayMs } = DEFAULTS.retry;
  const lowest = () => 0;
  const highest = () => 1;

  test('the first retry with the defaults waits at most 1 s, at least half the base', () => {
    expect(backoffMs(1, baseDelayMs, maxDelayMs, highest)).toBeLessThanOrEqual(1_000);
    expect(backoffMs(1, baseDelayMs, maxDelayMs, highest)).toBe(baseDelayMs);
    expect(backoffMs(1, baseDelayMs, maxDelayMs, lowest)).toBe(baseDelayMs / 2);
  });

  test('doubles per retry', () => {
    expect([1, 2, 3, 4].map((n) => backoffMs(n, 100, 1_000_000, highest))).toEqual([100, 200, 400, 800]);
  });

  test('is capped at the maximum, jitter included', () => {
    expect(backoffMs(30, baseDelayMs, maxDelayMs, highest)).toBe(maxDelayMs);
    expect(backoffMs(30, baseDelayMs, maxDelayMs, lowest)).toBe(maxDelayMs / 2);
    expect(backoffMs(1000, baseDelayMs, maxDelayMs, highest)).toBe(maxDelayMs);
  });

  test('the redelivery schedule is capped too', () => {
    const { baseDelayMs: base, maxDelayMs: max } = DEFAULTS.redelivery;
    expect(backoffMs(50, base, max, highest)).toBe(max);
  });

  test('jitter scales by a factor in [0.5, 1]', () => {
    expect(backoffMs(3, 1000, 60_000, () => 0.5)).toBe(3_000);
    for (let i = 0; i < 200; i++) {
      const wait = backoffMs(3, 1000, 60_000);
      expect(wait).toBeGreaterThanOrEqual(2_000);
      expect(wait).toBeLessThanOrEqual(4_000);
    }
  });
});

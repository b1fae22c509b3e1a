import { isoTime } from '../../src/protocol/iso-time.js';

describe('isoTime: an event’s time, as toISOString writes it', () => {
  test('the same text for every millisecond of a second, across seconds, days and years, in any order', () => {
    const starts = [0, 951_782_400_000 /* 2000-02-29 */, Date.UTC(2026, 11, 31, 23, 59, 59), Date.now(), Date.UTC(9999, 11, 31, 23, 59, 59)];
    for (const start of starts) {
      for (let ms = start; ms < start + 2500; ms++) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
    }
    // Back and forth between seconds: the cached one never leaks into another.
    for (const ms of [5_000_999, 4_000_001, 5_000_000, 1_733_620_000_123, 4_000_010]) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  });

  test('outside four-digit years and for fractions of a millisecond, what toISOString writes', () => {
    for (const ms of [-1, -62_198_755_200_001, Date.UTC(10_000, 0, 1), 1_733_620_000_123.5]) {
      expect(isoTime(ms)).toBe(new Date(ms).toISOString());
    }
  });
});

import { cleanTracestate, formatTraceparent, parseTraceparent } from '../../src/observe/trace-context.js';

describe('W3C traceparent', () => {
  const valid = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

  it('round-trips a valid value', () => {
    const parsed = parseTraceparent(valid);
    expect(parsed).toEqual({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 });
    expect(formatTraceparent(parsed!.traceId, parsed!.spanId, parsed!.traceFlags)).toBe(valid);
  });

  it.each([
    ['not a string', 42],
    ['upper case', valid.toUpperCase()],
    ['version ff', valid.replace(/^00/, 'ff')],
    ['extra fields on version 00', `${valid}-extra`],
    ['a zero trace id', `00-${'0'.repeat(32)}-b7ad6b7169203331-01`],
    ['a zero span id', `00-0af7651916cd43dd8448eb211c80319c-${'0'.repeat(16)}-01`],
    ['a short trace id', '00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01'],
    ['too long', `01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-${'x'.repeat(300)}`],
  ])('ignores %s', (_what, value) => {
    expect(parseTraceparent(value)).toBeUndefined();
  });

  it('accepts a future version with more fields', () => {
    expect(parseTraceparent(`01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00-more`)).toMatchObject({ traceFlags: 0 });
  });

  it('keeps a tracestate within the spec length only', () => {
    expect(cleanTracestate('vendor=1')).toBe('vendor=1');
    expect(cleanTracestate('')).toBeUndefined();
    expect(cleanTracestate('x'.repeat(513))).toBeUndefined();
    expect(cleanTracestate(['a'])).toBeUndefined();
  });
});

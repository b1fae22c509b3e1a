import { createEvent } from '../../src/protocol/cloudevents';
import { newEventId } from '../../src/protocol/event-id';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The Unix milliseconds a UUIDv7 carries in its first 48 bits. */
const millisOf = (id: string): number => Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);

describe('event ids', () => {
  it('are UUIDv7 strings carrying the millisecond they were made in', () => {
    const now = Date.UTC(2026, 11, 7, 13, 0, 0, 123);
    const id = newEventId(now);
    expect(id).toMatch(UUID_V7);
    expect(millisOf(id)).toBe(now);
    expect(millisOf(newEventId(1))).toBe(1);
  });

  it('sort by creation time across milliseconds, and never repeat within one', () => {
    const earlier = Array.from({ length: 500 }, () => newEventId(1_800_000_000_000));
    const later = Array.from({ length: 500 }, () => newEventId(1_800_000_000_001));
    expect(new Set([...earlier, ...later]).size).toBe(1000);
    const sorted = [...later, ...earlier].sort();
    expect(new Set(sorted.slice(0, 500))).toEqual(new Set(earlier));
  });

  it('give an event the same instant as its time attribute', () => {
    const event = createEvent('billing', 'invoice.paid', { amount: 1 });
    expect(event.id).toMatch(UUID_V7);
    expect(millisOf(event.id)).toBe(Date.parse(event.time as string));
  });
});

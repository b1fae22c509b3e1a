/** The end-to-end bench's event: 1 KB of JSON carrying its run id and its emit time. */
import { SECRET } from '../lib.js';

export { SECRET };
export const EVENT_TYPE = 'user-created';

export interface E2EPayload {
  /** Receivers count only events of the run under measurement (leftovers of the previous one are ignored). */
  run: string;
  seq: number;
  /** Emit time, ms on the machine's monotonic clock (`now()`), for emit → handler latency. */
  sent_at: number;
  user_id: string;
  email: string;
  plan: 'free' | 'pro' | 'team';
  bio: string;
}

export const SCHEMA = {
  type: 'object',
  properties: {
    run: { type: 'string' },
    seq: { type: 'integer' },
    sent_at: { type: 'number' },
    user_id: { type: 'string' },
    email: { type: 'string' },
    plan: { type: 'string', enum: ['free', 'pro', 'team'] },
    bio: { type: 'string' },
  },
  required: ['run', 'seq', 'sent_at', 'user_id', 'email', 'plan', 'bio'],
  additionalProperties: false,
} as const;

/**
 * ms with sub-ms precision on CLOCK_MONOTONIC, one clock for every process on this machine. Not
 * `performance.timeOrigin + performance.now()`: each process fixes its origin from the wall clock
 * at start, and on this VM two processes' origins disagreed by up to ~12 ms (the wall clock being
 * slewed), enough for negative latencies at 500 events/s.
 */
export const now = (): number => Number(process.hrtime.bigint()) / 1e6;

const PAD = (() => {
  const probe: E2EPayload = { run: 'r0000000', seq: 100000, sent_at: now(), user_id: 'u-100000', email: 'ada@example.com', plan: 'pro', bio: '' };
  return 'x'.repeat(1024 - JSON.stringify(probe).length);
})();

/** A payload whose JSON is 1 KB (for an 8-character run id and a 6-digit `seq`), stamped now. */
export function payload(run: string, seq: number): E2EPayload {
  return { run, seq, sent_at: now(), user_id: `u-${seq}`, email: 'ada@example.com', plan: 'pro', bio: PAD };
}

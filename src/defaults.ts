/**
 * Every default of the library, in one place. `createEventBus` merges the caller's options and
 * the environment over this object (see config.ts); nothing else hard-codes a tunable.
 */
export const DEFAULTS = {
  /** Path the middleware answers. */
  path: '/events',
  /** Largest request body the receiver reads, in bytes (1 MiB). */
  bodyLimitBytes: 1024 * 1024,
  /**
   * Longest wait for a request body once its headers arrived, in ms: a client trickling bytes
   * gets 408 and its connection closed.
   */
  bodyTimeoutMs: 10_000,
  /**
   * Bytes held at once by request bodies whose signature is not checked yet, across every
   * request a receiver reads (32 MiB: 32 bodies at the 1 MiB limit, or thousands of typical
   * 1 KB events in transit). Beyond it the receiver answers 503 + Retry-After and closes.
   */
  maxUnverifiedBytes: 32 * 1024 * 1024,
  receiver: {
    /** `Retry-After` (seconds) when the receiver cannot take an event now: budget full, inbox failing. */
    retryAfterSeconds: 5,
    /** Handler completions remembered in memory while the inbox cannot record them (oldest forgotten first). */
    maxUnrecorded: 10_000,
  },
  /** Timeout of one HTTP request, in ms. */
  timeoutMs: 10_000,
  /** How far a `webhook-timestamp` may be from the receiver's clock, in seconds (Standard Webhooks: 5 min). */
  toleranceSeconds: 300,
  logLevel: 'info',
  /** Deliveries in flight at once, per target service. */
  concurrency: 16,
  /** Immediate retries of one delivery (axios-retry), before it goes back to the outbox. */
  retry: {
    retries: 3,
    baseDelayMs: 300,
    maxDelayMs: 5_000,
    /** A `Retry-After` up to this is waited out in place; a longer one reschedules the delivery. */
    maxRetryAfterMs: 10_000,
  },
  /** Redelivery from the outbox after the immediate retries, in the spirit of the Standard Webhooks schedule. */
  redelivery: {
    baseDelayMs: 5_000,
    maxDelayMs: 6 * 60 * 60 * 1000,
    /** A delivery still failing this long after its emit becomes a dead letter (3 days). */
    horizonMs: 3 * 24 * 60 * 60 * 1000,
    /** While a target is down, one delivery probes it at most this far apart. */
    probeMaxDelayMs: 30_000,
  },
  outbox: {
    /** Undelivered deliveries the in-memory outbox holds before `emit` rejects with OutboxFullError. */
    maxPending: 100_000,
    /** Dead letters the in-memory outbox keeps (oldest evicted first, each with an error log line). */
    maxDeadLetters: 10_000,
    /** Durable outbox: how often the dispatcher looks for work added by another process (a replay from the CLI). */
    pollIntervalMs: 2_000,
  },
  inbox: {
    /** Event ids the in-memory inbox remembers (oldest forgotten first). */
    maxEntries: 100_000,
    /** How long the durable inbox remembers a processed event id (7 days: longer than the redelivery horizon). */
    retentionMs: 7 * 24 * 60 * 60 * 1000,
  },
  /** How long `close()` waits for in-flight deliveries and handlers, in ms. */
  shutdownTimeoutMs: 5_000,
} as const;

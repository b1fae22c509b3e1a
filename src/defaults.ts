/**
 * Every default of the library, in one place. `createEventBus` merges the caller's options and
 * the environment over this object (see config.ts); nothing else hard-codes a tunable. What an
 * option means is said where it is declared (config.ts, default-bus.ts); here, why a value is what
 * it is, and what no option sets.
 */
export const DEFAULTS = {
  path: '/events',
  bodyLimitBytes: 1024 * 1024,
  maxPayloadDepth: 64,
  bodyTimeoutMs: 10_000,
  bodyStartTimeoutMs: 2_000,
  /**
   * Bytes held at once by request bodies whose signature is not checked yet, counted as they
   * arrive, across every request a receiver reads (32 MiB: 32 bodies at the 1 MiB limit, or
   * thousands of typical 1 KB events in transit). Beyond it the receiver answers 503 + Retry-After and closes.
   */
  maxUnverifiedBytes: 32 * 1024 * 1024,
  receiver: {
    /** `Retry-After` (seconds) when the receiver cannot take an event now: budget full, inbox failing. */
    retryAfterSeconds: 5,
    /** Handler completions remembered in memory while the inbox cannot record them (oldest forgotten first). */
    maxUnrecorded: 10_000,
    /**
     * Handler completions are recorded as they finish, in groups written at `maxCompletions`
     * completions (a handler's mark and its event's `done` count once) or `maxWaitMs` after the first (at once when no handler runs): a crash reruns the handlers
     * running then, and at most this many that had completed.
     */
    recordGroup: { maxCompletions: 16, maxWaitMs: 10 },
  },
  timeoutMs: 10_000,
  /** How far a `webhook-timestamp` may be from the receiver's clock, in seconds (Standard Webhooks: 5 min). */
  toleranceSeconds: 300,
  logLevel: 'info',
  /**
   * A payload written into a debug log line (`event data`): one nested deeper than `maxDepth` is
   * left out, one longer than `maxChars` as JSON is cut, so that nothing a peer sends can overflow a
   * logger's stack or flood its output.
   */
  logPayload: { maxDepth: 32, maxChars: 16 * 1024 },
  concurrency: 16,
  /**
   * Batched HTTP delivery: deliveries for one target that queued up while requests were in flight
   * go out together, as one `application/cloudevents-batch+json` request signed once. A lone
   * event is sent at once in structured mode: batching adds no latency when idle.
   */
  batch: {
    enabled: true,
    maxEvents: 100,
    /** Most body bytes in one request (half the receiver's default 1 MiB body limit). */
    maxBytes: 512 * 1024,
    lingerMs: 0,
  },
  httpClient: 'axios' as 'axios' | 'undici',
  tls: {
    /**
     * TLS files named by `EVENTS_TLS_*_FILE` are read again at most this often, in ms (and before
     * the next connection after a failed one): a rotated certificate is used without a restart.
     */
    fileCheckMs: 1_000,
  },
  /** Immediate retries of one delivery (in place: src/backends/http/retry-in-place.ts), before it goes back to the outbox. */
  retry: {
    retries: 3,
    baseDelayMs: 300,
    maxDelayMs: 5_000,
    maxRetryAfterMs: 10_000,
  },
  /** Redelivery from the outbox after the immediate retries, in the spirit of the Standard Webhooks schedule. */
  redelivery: {
    baseDelayMs: 5_000,
    maxDelayMs: 6 * 60 * 60 * 1000,
    horizonMs: 3 * 24 * 60 * 60 * 1000,
    probeMaxDelayMs: 30_000,
  },
  outbox: {
    /**
     * Undelivered deliveries the in-memory outbox holds per target before an `emit` to that target
     * rejects with OutboxFullError. Per target, so one dead target never blocks the others.
     */
    maxPending: 100_000,
    /**
     * Bytes of event bodies the in-memory outbox holds per target (64 MiB): with the count bound
     * alone, 4000 events of 256 KiB held 1.1 GB. 64 MiB is 65 000 events of 1 KiB, minutes of
     * backlog at the rates we measure, and a known ceiling of `targets × 64 MiB` for the process.
     */
    maxPendingBytes: 64 * 1024 * 1024,
    /**
     * Backpressure, every outbox: when this many deliveries to one target that is up wait for
     * their first attempt, `emit` (its event already recorded) waits until half as many do, so
     * that emits never starve delivery and the backlog stays bounded. 0: never wait. Well above
     * what a lane has in flight (`concurrency` requests of up to `batch.maxEvents` events each),
     * so that it never idles the lane; about a second of delivery at the rates we measure.
     */
    highWaterMark: 5_000,
    /**
     * Longest wait of one `emit` above the high-water mark, in ms (Kafka's `max.block.ms`): a
     * target that hangs without failing (each try ends at `timeoutMs`, then in-place retries)
     * throttles emits to one per emitter per wait, rather than blocking them for a minute.
     */
    maxBlockMs: 5_000,
    maxDeadLetters: 10_000,
    pollIntervalMs: 2_000,
    writeWaitMs: 2_000,
    leaseMs: 30_000,
    /** Both outboxes: a record last tried (or created) more than this in the future means the wall clock stepped back: it is due now. */
    clockStepSlackMs: 10_000,
  },
  /** PostgreSQL (`EVENTS_DATABASE_URL`). */
  database: {
    schema: 'public',
    poolSize: 10,
    /**
     * The stores' frequent statements prepared (named): measured on the e2e bench's PostgreSQL row,
     * about 20% more events/s at saturation, the server no longer planning each claim and settle.
     */
    preparedStatements: true,
    /**
     * Timeouts of the pool a bus opens from a URL (your own `pg.Pool` keeps its settings); every
     * call has a deadline, so a connection that hangs (a network that drops packets, a proxy that
     * stops forwarding) fails calls on time instead of stalling them. `connectionTimeoutMillis`:
     * the longest wait for a connection (opening one, or one of the pool coming free).
     */
    connectTimeoutMs: 5_000,
    /**
     * `statement_timeout`: the server cancels a statement running longer (a lock wait, a runaway
     * query; a handler's own statements through `tx` too: a handler answers within the sender's
     * `timeoutMs` anyway).
     */
    statementTimeoutMs: 10_000,
    /**
     * `query_timeout`: a statement with no answer for this long fails and its connection is
     * destroyed (never handed out again) and replaced, with a warning. Longer than
     * `statementTimeoutMs`, so that a live server's cancel comes first. Emits use what is left of
     * `outbox.writeWaitMs` instead; `close()` destroys what is still open at its deadline.
     */
    queryTimeoutMs: 15_000,
    /**
     * PostgreSQL outbox: while another instance holds a target's whole concurrency, or the target
     * is down and probed elsewhere, how often this instance looks again (NOTIFY wakes it sooner).
     */
    busyRetryMs: 50,
    /**
     * PostgreSQL outbox: the shortest time between two NOTIFYs of one instance (the emits that wake
     * the other instances). The NOTIFYs of emits committed meanwhile go in the next one, together:
     * this instance sends its own emits at once, so the others, woken to share a backlog, wait at
     * most this long, and at everyday rates an emit costs one statement, not two.
     */
    notifyGapMs: 20,
    /**
     * PostgreSQL outbox: how long what the database said about a target's due rows stands in for a
     * read, while nothing this instance knows of changed them (NOTIFY, its own writes, a replay
     * forget it sooner). The poll reads again after it, whatever a NOTIFY lost.
     */
    seenForMs: 1_000,
    /**
     * PostgreSQL outbox: the rows of delivered events are deleted in groups, one statement for at
     * most `settleGroupMax` ids, written `settleGroupMs` after the first (a delivery's settle
     * resolves once queued: its row stays leased to the instance until then). 5 ms: at 500
     * events/s, each sent alone, about three deliveries share a DELETE instead of one each, while a
     * delivered row outlives its delivery by a few ms only (nothing reads it: the instance's own
     * reads write the group first), and a crash delivers again at most the last 5 ms of deliveries
     * (receivers dedupe). 64: beyond that rate a group is written as soon as it is worth one
     * statement; a batch of more is deleted at once, as one statement, as before.
     */
    settleGroupMax: 64,
    settleGroupMs: 5,
    /**
     * PostgreSQL outbox: an instance's emits (outside a transaction) are written one group INSERT
     * at a time, the emits made while it commits together in the next, up to this many deliveries
     * (an emit's deliveries are never split; the rest go in the one after). Bounds the statement
     * and how long it holds its targets' rows under an emit storm.
     */
    emitGroupMax: 1_000,
    /** How often the PostgreSQL inbox deletes this service's ids older than `inbox.retentionMs`. */
    inboxPruneIntervalMs: 60 * 60 * 1000,
  },
  /** SQLite files (outbox and inbox). */
  sqlite: {
    /**
     * How long one statement waits for a lock held by another connection, in ms. better-sqlite3 is
     * synchronous, so this blocks the event loop: kept short; failed writes are retried later.
     */
    busyTimeoutMs: 20,
    /** The same for operator tools (CLI, admin functions), which are not on any request path. */
    operatorBusyTimeoutMs: 5_000,
    /** How often the durable inbox checks that its file was not deleted or replaced (the outbox uses `outbox.pollIntervalMs`). */
    fileCheckIntervalMs: 2_000,
    /**
     * How often the checkpointer thread copies a durable store's WAL into its file, in ms (see
     * backends/sqlite/checkpointer.ts); the WAL grows by what is written meanwhile.
     */
    checkpointIntervalMs: 1_000,
    /**
     * SQLite's own checkpoint, in the commit that crosses this many WAL pages (64 MiB), for a file
     * the checkpointer thread cannot serve (and operator tools): rarer than SQLite's 1000, because
     * it stops the event loop, fsyncs included.
     */
    inlineCheckpointPages: 16_384,
  },
  /** Retrying a store that failed (disk full, locked, corrupt) from background work: growing waits, capped. */
  storeRetry: {
    /** First wait after a failure; doubles with each failure in a row. */
    baseDelayMs: 50,
    /** Longest wait: a store that recovers is used again within this. */
    maxDelayMs: 2_000,
  },
  inbox: {
    maxEntries: 100_000,
    /** How long the durable inbox remembers a processed event id (7 days: longer than the redelivery horizon). */
    retentionMs: 7 * 24 * 60 * 60 * 1000,
  },
  shutdownTimeoutMs: 5_000,
  openTelemetry: true,
  /** `bus.health()` and `GET <path>/health`. */
  health: {
    endpoint: true,
    targetDownMs: 60_000,
    maxPendingAgeMs: 10 * 60 * 1000,
    /**
     * The outbox's backlog figures in health are at most this old, in ms: read again in the
     * background when older (one read at a time), never once per request.
     */
    statsMaxAgeMs: 2_000,
  },
  /** `bus.asyncapi()`: `info.version` when neither the `asyncapi.version` option nor a package.json (nearest the working directory) gives one. */
  asyncapi: { version: '0.0.0' },
  /** Operators (`console.token`, `EVENTS_CONSOLE_TOKEN`) and the console at `<path>/console`. */
  console: {
    /** The name of the operator of the single `console.token`. */
    operator: 'operator',
    /** A console session (its cookie) lasts this long, in ms (12 h). */
    sessionTtlMs: 12 * 60 * 60 * 1000,
    /** Dead letters per page, unless the page asks for another number (at most `maxPageSize`). */
    pageSize: 50,
    maxPageSize: 500,
    /** Failed sign-ins from one address within `failureWindowMs` before the next are refused (429) … */
    failuresAllowed: 5,
    failureWindowMs: 60_000,
    /** … for this long, in ms, doubling with each failure after that while they go on. */
    slowDownMs: 1_000,
    maxSlowDownMs: 15 * 60 * 1000,
    /** Addresses whose failures are remembered at most (the oldest are forgotten). */
    maxTrackedAddresses: 10_000,
    /** Delivered-per-minute figures kept per target, in minutes (the chart). */
    deliveredMinutes: 15,
    /** The standalone console's port and address (`events-library console`). */
    port: 8080,
    host: '127.0.0.1',
  },
  /** The operator seam (src/operate/). */
  operator: {
    /** A page of a RabbitMQ dead-letter queue reads at most this many messages of it (the page says `truncated` past it). */
    brokerReadWindow: 1_000,
  },
  handleSignals: true,
  /** RabbitMQ (`broker` / `EVENTS_BROKER_URL`); see src/backends/amqp/topology.ts for the queues these shape. */
  broker: {
    prefix: '',
    /**
     * Waits before the 1st, 2nd, … retry of a message whose handler failed (the last repeats).
     * Each is a TTL "wait" queue that dead-letters back to the service's queue; a `RetryLaterError(n)`
     * waits in the shortest of them that is at least n seconds.
     */
    retryDelaysMs: [1_000, 5_000, 30_000, 120_000, 600_000, 3_600_000] as readonly number[],
    /**
     * More wait queues, so that `RetryLaterError(n)` waits close to n seconds: it takes the shortest
     * wait queue (of these and `retryDelaysMs`) of at least n s, the longest when n is beyond them all.
     */
    retryLaterDelaysMs: [1_000, 2_000, 3_000, 5_000, 10_000, 15_000, 30_000, 60_000, 300_000, 900_000, 3_600_000] as readonly number[],
    maxAttempts: 10,
    /**
     * RabbitMQ: messages one instance holds unacked at once, when neither `broker.prefetch` nor
     * `concurrency` is given. A batch's worth (`batch.maxEvents`): with 16, the consumer waited on
     * the broker between small rounds (e2e bench, docs/benchmarks.md "RabbitMQ path").
     */
    prefetch: 100,
    /** `x-delivery-limit` of a service's quorum queue: redeliveries (a consumer died mid-message) before the broker dead-letters it. */
    deliveryLimit: 20,
    /**
     * Most dead letters one RabbitMQ listing returns (the first that match, in queue order); the
     * whole queue is still read, and the rest counted in the list's `more`. Replay and discard by
     * id or filter always reach the whole queue.
     */
    listLimit: 10_000,
    reconnectBaseDelayMs: 100,
    reconnectMaxDelayMs: 5_000,
    /** Kafka (`kafka://…`); see src/backends/kafka/topics.ts for the topics these shape. */
    kafka: {
      /** Create a service's topic and its `.dlq` when missing (and allow auto-creation); off where topics are provisioned. */
      createTopics: true,
      /** Partitions of a topic the library creates (the unit of parallelism within one service). */
      partitions: 6,
      /** Consumer group session timeout: a SIGKILLed instance's partitions move to the others after this long. */
      sessionTimeoutMs: 10_000,
      /** Heartbeat interval of a consumer (also sent while a failing event waits for its retry). */
      heartbeatIntervalMs: 1_000,
      /** Longest wait of one fetch for new records: also how long leaving the group can wait for the fetch in flight. */
      fetchMaxWaitMs: 500,
      /**
       * Most record bytes (keys, values, headers) in one produce request: the records sent while one
       * request is in flight go together in the next, up to this (a broker refuses a partition's
       * batch over its `message.max.bytes`, 1 MB by default, and records of one key share a
       * partition). A record larger than this goes alone.
       */
      maxRequestBytes: 900 * 1024,
    },
  },
  /**
   * The test kit (`events-library/testing`): buses of an in-process network deliver without
   * sockets, with the real rules (signatures, validation, dedupe, outcomes) on test-sized clocks.
   */
  testing: {
    /** How long `network.settled()` waits before failing with what is still pending (under jest's 5 s test timeout). */
    settleTimeoutMs: 4_000,
    /** How often `network.settled()` looks at the outboxes, in ms. */
    settlePollMs: 5,
    /** Level of the network's default logger: failures a test did not expect still show. */
    logLevel: 'error',
    /** Immediate retries of one in-process delivery (the HTTP transport's rules, shorter waits). */
    retry: { retries: 3, baseDelayMs: 10, maxDelayMs: 100, maxRetryAfterMs: 10_000 },
    /** Redelivery from the outbox (the real dispatcher, shorter waits; the horizon stays the production one). */
    redelivery: { baseDelayMs: 50, maxDelayMs: 1_000, probeMaxDelayMs: 500 },
  },
} as const;

import type { Logger } from 'winston';
import { createExpressMiddleware, type ExpressMiddleware, type MiddlewareOptions } from './adapters/express.js';
import { createFastifyPlugin, type FastifyPlugin } from './adapters/fastify.js';
import { createFetchHandler, type FetchHandler } from './adapters/fetch.js';
import { createKoaMiddleware, type KoaMiddleware } from './adapters/koa.js';
import { createNodeHandler, type NodeHandler } from './adapters/node.js';
import { type BrokerConsumer, type BrokerLink, openBroker, openBrokerOperator } from './backends/broker-link.js';
import { Catalog } from './catalog.js';
import { type EventBusOptions, type ResolvedConfig, type ResolvedTarget, resolveConfig, resolveTarget } from './config.js';
import { DEFAULTS } from './defaults.js';
import { BusClosedError, ConfigError, PayloadTooDeepError, PayloadTooLargeError, UndeclaredEventError } from './errors/index.js';
import { errorMessage, loggablePayload } from './logger.js';
import { healthOf, type HealthStatus, StatsSnapshot } from './observe/health.js';
import { Telemetry } from './observe/telemetry.js';
import { addressedBodies, createEvent } from './protocol/cloudevents.js';
import { deeperThan } from './protocol/payload-depth.js';
import type { InboxStore } from './receive/inbox-store.js';
import { Receiver, type ReceiverRequest, type ReceiverResponse } from './receive/receiver.js';
import { type RouteRequest, type RouteResponse, RouteTable } from './adapters/routes.js';
import { Admission } from './send/admission.js';
import { TransactionEmits } from './send/transaction-emits.js';
import { Dispatcher } from './send/dispatcher.js';
import { type OutboxStore, whatAndWhere } from './send/outbox-store.js';
import { type AsyncApiDocument, asyncApiDocument, packageVersion } from './contracts/asyncapi.js';
import { asyncApiRoute } from './contracts/asyncapi-route.js';
import { describeOnly, describingConfig } from './contracts/describe-only.js';
import { combineOperators } from './operate/functions.js';
import { DeliveryActivity } from './console/activity.js';
import { addConsoleRoutes } from './console/api.js';
import { serviceOverview } from './console/overview.js';
import { operatorOf } from './operate/operator-token.js';
import type { DeadLetterFilter, DeadLetterList, DeadLetterOperator, DeadLetterSelection, OutboxStats } from './operate/operator.js';
import { openInbox, openOutbox } from './backends/stores.js';
import { openHttpTransport } from './backends/http/backend.js';
import type { ServiceName } from './service-names.js';
import { isDecoratorCall, registerInstance, subscribeDecorator, type Subscribe, type SubscribeDecorator } from './subscribe-decorator.js';
import { SUBSCRIBERS, type Transport } from './send/transport.js';
import type {
  DataOf,
  DeclareOptions,
  EmitOptions,
  EmitReceipt,
  EmittableType,
  EventHandler,
  EventRegistry,
  JSONSchema,
  PayloadOf,
  SubscribeOptions,
  Unsubscribe,
} from './types.js';

/** How long aborted deliveries get to settle back into the outbox at shutdown. */
const ABORT_SETTLE_MS = 1_000;

/**
 * An isolated event bus: declarations, subscriptions, an outbox and dispatcher, a receiver.
 * `Events` maps event types to schemas for the type checker; `declareEvent` with a schema
 * returns the same bus typed with that event added.
 */
export class EventBus<Events extends object = EventRegistry> {
  private readonly config: ResolvedConfig;
  private readonly catalog = new Catalog();
  /** Target services by name, as last resolved: by declareEvent, or on first use by the dispatcher. */
  private readonly targets = new Map<string, ResolvedTarget>();
  private readonly outbox: OutboxStore;
  private readonly inbox: InboxStore;
  private readonly transport: Transport;
  private readonly dispatcher: Dispatcher;
  /** Backpressure: `emit` waits while a target that is up has more than `outbox.highWaterMark` deliveries not yet tried. */
  private readonly admission: Admission;
  /** The log lines of `emit(…, { tx })`: `event emitted` once committed and dispatched. */
  private readonly transactionEmits: TransactionEmits;
  private readonly receiver: Receiver;
  private readonly telemetry: Telemetry;
  /** The outbox's figures health shows: a few seconds old at most, never read once per request. */
  private readonly stats: StatsSnapshot;
  /** What the dispatcher saw per target (last error, deliveries per minute), for the console. */
  private readonly activity: DeliveryActivity;
  private closing: Promise<void> | undefined;
  private routeTable: RouteTable | undefined;
  /** Dead letters, replay and discard: the outbox's, and once this bus consumes from a broker, its queue's too. */
  private operator: DeadLetterOperator;
  private brokerOperator: DeadLetterOperator | undefined;
  private readonly resuming: NodeJS.Immediate | undefined;
  private readonly poll: NodeJS.Timeout | undefined;
  /** Through a broker: the connection, and this service's consumer (started by the first subscribeTo). */
  private readonly broker: BrokerLink | undefined;
  private consumer: BrokerConsumer | undefined;
  private consumerStart: NodeJS.Immediate | undefined;
  /** Built by `events-library asyncapi`: records declarations and subscriptions, resolves and opens nothing (contracts/describe-only.ts). */
  private readonly describing = describeOnly();

  constructor(options: EventBusOptions = {}) {
    this.config = this.describing ? describingConfig(resolveConfig(options)) : resolveConfig(options);
    const { logger, broker } = this.config;
    if (broker) {
      this.broker = openBroker({ broker, logger, name: this.config.service ?? 'events-library', timeoutMs: this.config.timeoutMs });
    }
    // Before any store opens: a missing optional HTTP client fails with nothing to release.
    this.transport = options.transport ?? this.broker?.transport ?? openHttpTransport(this.config);
    this.outbox = openOutbox(this.config);
    this.activity = new DeliveryActivity(!broker && !options.transport);
    try {
      this.inbox = openInbox(this.config);
    } catch (error) {
      void this.outbox.close(); // release the outbox's lock and timers: a corrected retry in this process must succeed
      throw error;
    }
    this.telemetry = new Telemetry({
      ...this.config,
      activity: this.activity,
      sources: {
        backlog: async () => Object.fromEntries(Object.entries((await this.outbox.stats()).targets).map(([t, s]) => [t, s.pending])),
        targetsDown: () => {
          const down = this.dispatcher.downSince();
          return Object.fromEntries([...new Set([...this.targets.keys(), ...Object.keys(down)])].map((t) => [t, t in down]));
        },
      },
    });
    this.transactionEmits = new TransactionEmits(logger);
    this.admission = new Admission({ ...this.config.outbox, isDown: (target) => this.dispatcher.isDown(target), logger });
    this.dispatcher = new Dispatcher({
      ...this.config, // logger, concurrency, batch, redelivery
      store: this.outbox,
      transport: this.transport,
      resolveTarget: (name) => this.target(name),
      telemetry: this.telemetry,
      progress: this.admission,
      dispatched: (records) => this.transactionEmits.dispatched(records),
    });
    // Its keys, limits, timeouts, logger and service are the configuration's (the inbox after it: the store, not its options).
    this.receiver = new Receiver({ ...this.config, ...DEFAULTS.receiver, catalog: this.catalog, inbox: this.inbox, telemetry: this.telemetry });
    this.stats = new StatsSnapshot(() => this.outbox.stats(), DEFAULTS.health.statsMaxAgeMs);
    this.outbox.onWork((target) => this.dispatcher.notify(target));
    this.operator = this.outbox;
    if (this.outbox.durable) {
      // Resume what a previous run left, and pick up what an operator replays from another process.
      this.resuming = setImmediate(() => this.dispatcher.resume());
      this.poll = setInterval(() => this.dispatcher.resume(), this.config.outbox.pollIntervalMs).unref();
    }
  }

  /** The winston logger this bus writes to (yours, or the default JSON lines). */
  get logger(): Logger {
    return this.config.logger;
  }

  /** This service's name (the CloudEvents `source` of what it emits), if configured. */
  get service(): string | undefined {
    return this.config.service;
  }

  /**
   * Declares that this service emits `type` to `targetServices`. Resolves every target's URL and
   * secret now: a missing one throws a ConfigError naming the variable to set. Without a target
   * list (`declareEvent(type, { schema })`), through a broker: to every service that subscribes to
   * `type` there, signed with this service's secret (over HTTP push, a ConfigError: it needs addresses).
   */
  declareEvent<const T extends string, const S extends JSONSchema>(
    type: T,
    targetServices: readonly ServiceName[],
    options: DeclareOptions<S> & { schema: S },
  ): EventBus<Events & { [K in T]: S }>;
  declareEvent<const T extends string>(
    type: T,
    targetServices: readonly ServiceName[],
    options?: DeclareOptions,
  ): EventBus<Events & { [K in T]: unknown }>;
  declareEvent<const T extends string, const S extends JSONSchema>(type: T, options: DeclareOptions<S> & { schema: S }): EventBus<Events & { [K in T]: S }>;
  declareEvent<const T extends string>(type: T, options?: DeclareOptions): EventBus<Events & { [K in T]: unknown }>;
  declareEvent(type: string, targetServices?: readonly ServiceName[] | DeclareOptions, options: DeclareOptions = {}): unknown {
    this.requireService('declareEvent');
    if (targetServices === undefined || (typeof targetServices === 'object' && targetServices !== null && !Array.isArray(targetServices))) {
      const why = this.describing || (this.transport.toSubscribers?.(type) ?? HTTP_NEEDS_TARGETS);
      if (why !== true) throw new ConfigError(`declareEvent("${type}") without target services: ${why}`);
      if (!this.describing) this.targets.set(SUBSCRIBERS, resolveTarget(this.config, SUBSCRIBERS));
      this.catalog.declare(type, [SUBSCRIBERS], (targetServices as DeclareOptions | undefined)?.schema);
      return this;
    }
    if (!Array.isArray(targetServices) || targetServices.length === 0) {
      throw new ConfigError(`declareEvent("${type}") needs at least one target service, e.g. ["payments"]`);
    }
    const names = [...new Set(targetServices)];
    if (!this.describing) for (const target of names.map((name) => resolveTarget(this.config, name))) this.targets.set(target.name, target);
    this.catalog.declare(type, names, options.schema);
    return this;
  }

  /**
   * This service's AsyncAPI 3.0 document: a channel per event type, the payload schemas, an
   * operation `send` per declared event (targets in `x-targets`) and `receive` per subscription.
   * `info.version`: the `asyncapi.version` option, else the nearest package.json's version.
   */
  asyncapi(): AsyncApiDocument {
    const service = this.requireService('asyncapi');
    return asyncApiDocument({ service, version: this.config.asyncapiVersion ?? packageVersion(), ...this.catalog.contract() });
  }

  /** Runs `handler` for every `type` event this service receives. Returns an unsubscribe function. */
  subscribeTo<const T extends string, const S extends JSONSchema>(
    type: T,
    handler: EventHandler<DataOf<S>>,
    options: SubscribeOptions<S> & { schema: S },
  ): Unsubscribe;
  subscribeTo<const T extends string>(
    type: T,
    handler: EventHandler<NoInfer<PayloadOf<Events, T>>>,
    options?: SubscribeOptions,
  ): Unsubscribe;
  /**
   * Without a handler: a method decorator. Standard decorators subscribe each instance of the
   * class as it is constructed, `this` bound to it, under the name `ClassName.methodName` (a
   * second instance on this bus throws ConfigError: that name is taken); legacy ones
   * (`experimentalDecorators`) record the method for `register(instance)`.
   * @example class Billing { @bus.subscribeTo('user-created', { schema: UserCreated }) async open(data) {…} }
   */
  subscribeTo<const T extends string, const S extends JSONSchema>(
    type: T,
    options: SubscribeOptions<S> & { schema: S },
  ): SubscribeDecorator<DataOf<S>>;
  subscribeTo<const T extends string>(type: T, options?: SubscribeOptions): SubscribeDecorator<NoInfer<PayloadOf<Events, T>>>;
  subscribeTo(type: string, ...rest: unknown[]): unknown {
    if (isDecoratorCall(rest)) return subscribeDecorator(type, (rest[0] ?? {}) as SubscribeOptions, this.subscribe);
    return this.subscribe(type, rest[0] as EventHandler<unknown>, (rest[1] ?? {}) as SubscribeOptions);
  }

  /**
   * Subscribes the methods of `instance` decorated with `subscribeTo` the legacy way
   * (`experimentalDecorators`, as NestJS compiles), `this` bound to it; all or none. Returns one
   * unsubscribe for them all. Standard decorators need no call: constructing the class subscribes it.
   */
  register(instance: object): Unsubscribe {
    return registerInstance(this.subscribe, instance);
  }

  private readonly subscribe: Subscribe = (type, handler, options) => {
    if (this.broker && !this.consumer) this.createConsumer();
    const unsubscribe = this.catalog.subscribe(type, handler, options.schema, options.name);
    // Through a broker, consuming starts by itself once the startup code (this turn) has subscribed everything.
    if (this.consumer && !this.consumerStart && !this.closing) {
      this.consumerStart = setImmediate(() => {
        this.start().catch((error: unknown) => this.config.logger.error('broker consumer did not start', { error: errorMessage(error) }));
      });
    }
    return unsubscribe;
  };

  /**
   * Through a broker: starts consuming this service's queue now, and resolves once the consumer
   * is registered with the broker. Optional: the first `subscribeTo` starts it on the next turn
   * of the event loop. Without a broker (HTTP push, the middleware receives) it resolves at once.
   */
  async start(): Promise<void> {
    if (!this.broker || this.closing) return;
    if (!this.inbox.durable && !this.config.inbox.volatile) {
      // Broker receipt has no timestamp window: only the inbox's memory stops a captured message republished after a restart.
      throw new ConfigError(
        'consuming from a broker needs a durable inbox, or the choice of a volatile one: the in-memory inbox forgets at restart, and a message captured and republished to the queue then runs its handlers again. ' +
          'Set EVENTS_INBOX_PATH (a SQLite file) or EVENTS_DATABASE_URL (the inbox in PostgreSQL), or accept it with inbox: { volatile: true } / EVENTS_INBOX_VOLATILE=true',
        { variable: 'EVENTS_INBOX_PATH' },
      );
    }
    if (!this.consumer) this.createConsumer();
    await this.consumer!.start();
  }

  /**
   * Validates `payload`, records one delivery per target in the outbox and resolves with the
   * event id. Delivery happens after, with retries; its failures are logged, never thrown here.
   * Backpressure: when a target that is up has more than `outbox.highWaterMark` deliveries not
   * yet tried, it resolves (the event recorded) once that backlog is down to half the mark, or
   * after `outbox.maxBlockMs`.
   */
  async emit<const T extends EmittableType<Events>>(
    type: T,
    payload: NoInfer<PayloadOf<Events, T>>,
    options: EmitOptions = {},
  ): Promise<EmitReceipt> {
    if (this.closing) throw new BusClosedError(this.config.service);
    const tx = options.tx;
    const inTx = tx !== undefined && tx !== null;
    if (inTx && !this.outbox.acceptsTransaction) {
      throw new ConfigError(
        'emit(…, { tx }) records the event in your transaction, which needs the PostgreSQL outbox: set EVENTS_DATABASE_URL (or the database option)',
        { variable: 'EVENTS_DATABASE_URL' },
      );
    }
    const declaration = this.catalog.declaration(type);
    if (!declaration) throw new UndeclaredEventError(type);
    // Before validating or serialising: either would overflow the stack on a deep enough payload.
    if (deeperThan(payload, this.config.maxPayloadDepth)) throw new PayloadTooDeepError(type, this.config.maxPayloadDepth);
    this.catalog.check(type, declaration.validate, payload);
    const source = this.requireService('emit');
    const key = options.key;
    if (key !== undefined && (typeof key !== 'string' || key === '' || key.length > MAX_KEY_LENGTH)) {
      throw new TypeError(`emit: options.key must be a non-empty string of at most ${MAX_KEY_LENGTH} characters`);
    }
    const event = createEvent(source, type, payload, key === undefined ? undefined : { partitionkey: key });
    // The emit's trace context travels in the event (CloudEvents distributed tracing, signed) and in the outbox.
    const span = this.telemetry.publish(event, declaration.targets);
    const trace = span?.traceparent === undefined ? undefined : { traceparent: span.traceparent, tracestate: span.tracestate };
    if (trace) Object.assign(event, trace.tracestate === undefined ? { traceparent: trace.traceparent } : trace);
    try {
      // Each target's delivery names it (`recipient`, signed): another service sharing the secret refuses it.
      const bodies = addressedBodies(event, declaration.targets, SUBSCRIBERS);
      // A body receivers would refuse with 413 is refused here, before anything is recorded.
      const limit = this.config.bodyLimitBytes;
      for (const addressed of bodies) {
        const bytes = addressed.length * 3 > limit ? Buffer.byteLength(addressed) : 0;
        if (bytes > limit) throw new PayloadTooLargeError(type, bytes, limit);
      }
      const createdAt = Date.now();
      await this.outbox.add(
        declaration.targets.map((target, i) => ({ eventId: event.id, type, source, target, body: bodies[i]!, createdAt, ...trace })),
        inTx ? { tx } : undefined,
      );
    } catch (error) {
      this.telemetry.published(span, type, error);
      throw error;
    }
    this.telemetry.published(span, type);
    // In the caller's transaction, the event exists only once it commits: the store's NOTIFY, sent
    // by PostgreSQL at commit, wakes the dispatcher (and the poll is the fallback).
    if (!inTx) {
      this.admission.added(declaration.targets);
      for (const target of declaration.targets) this.dispatcher.notify(target);
    }
    const targets = [...declaration.targets];
    // In the caller's transaction the event may still roll back: `event emitted` waits for its dispatch.
    if (inTx) this.transactionEmits.recorded({ eventId: event.id, type, source, targets });
    // One level check per emit where info is off (winston builds arrays at each): debug is below info.
    const { logger } = this.config;
    if (logger.isInfoEnabled()) {
      if (!inTx) logger.info('event emitted', { eventId: event.id, type, source, targets });
      if (logger.isDebugEnabled()) logger.debug('event data', { eventId: event.id, data: loggablePayload(payload) });
    }
    // Backpressure (outbox.highWaterMark): recorded, but not resolved while a target that is up has
    // too much not yet tried; the wait leaves the event loop to the dispatcher. Not in the caller's
    // transaction: the event exists only at its commit, and waiting would hold the transaction open.
    if (!inTx) {
      const admitted = this.admission.admit(declaration.targets);
      if (admitted) await admitted;
    }
    return { id: event.id, type, source, time: event.time!, targets };
  }

  /** Express middleware answering `POST /events` (configurable), and `GET /events/health`. */
  expressMiddleware(options: MiddlewareOptions = {}): ExpressMiddleware {
    return createExpressMiddleware(this.receiverFor('eventsMiddleware'), this.pathOf(options), this.config.bodyLimitBytes, this.routes);
  }

  /** Koa middleware answering `POST /events` (configurable), and `GET /events/health`. */
  koaMiddleware(options: MiddlewareOptions = {}): KoaMiddleware {
    return createKoaMiddleware(this.receiverFor('koaEventsMiddleware'), this.pathOf(options), this.config.bodyLimitBytes, this.routes);
  }

  /** A plain `node:http` handler answering `POST /events` (configurable), and `GET /events/health`. */
  nodeHandler(options: MiddlewareOptions = {}): NodeHandler {
    return createNodeHandler(this.receiverFor('nodeHandler'), this.pathOf(options), this.config.bodyLimitBytes, this.routes);
  }

  /**
   * A Fastify plugin answering `POST /events` (configurable) and the routes below it, in its own
   * encapsulation context: `app.register(bus.fastifyPlugin())`.
   */
  fastifyPlugin(options: MiddlewareOptions = {}): FastifyPlugin {
    return createFastifyPlugin(this.receiverFor('fastifyPlugin'), this.pathOf(options), this.config.bodyLimitBytes, this.routes);
  }

  /** A web-standard `(request: Request) => Promise<Response>` answering `POST /events` (configurable) and the routes below it. */
  fetchHandler(options: MiddlewareOptions = {}): FetchHandler {
    return createFetchHandler(this.receiverFor('fetchHandler'), this.pathOf(options), this.config.bodyLimitBytes, this.routes);
  }

  /**
   * Resolves once every delivery pending now has been tried once (delivered, rescheduled or
   * dead-lettered), or after `timeoutMs`: for runtimes that freeze after the response, which would
   * hold an in-memory outbox's deliveries (`waitUntil(bus.flush())`). A target counted down is
   * only probed, as always. @default timeoutMs the bus's `shutdownTimeoutMs`
   */
  flush(timeoutMs = this.config.shutdownTimeoutMs): Promise<void> {
    return this.dispatcher.flush(Date.now() + timeoutMs);
  }

  /**
   * A small JSON-able status: outbox reachable, backlog and oldest pending age per target (figures
   * up to a few seconds old), targets down, the broker consumer and the database (down since when),
   * shutting down; `healthy` is false past the `health` thresholds.
   */
  async health(): Promise<HealthStatus> {
    return healthOf({
      service: this.config.service,
      durable: this.outbox.durable,
      shuttingDown: this.closing !== undefined,
      stats: await this.stats.current(),
      known: [...this.targets.keys()],
      downSince: () => this.dispatcher.downSince(),
      consumers: this.consumer ? { [this.consumer.name]: this.consumer.availability } : {},
      database: this.outbox.database ?? this.inbox.database,
      thresholds: this.config.health,
      now: Date.now(),
    });
  }

  /**
   * The routes every adapter answers below the events path, besides the events intake: one table,
   * so Express, Koa, node:http and any adapter added later answer them alike. For the adapters.
   * @internal
   */
  get routes(): RouteTable {
    if (!this.routeTable) {
      this.routeTable = new RouteTable();
      if (this.config.health.endpoint) this.routeTable.add('GET', '/health', (request) => this.healthResponse(request));
      this.routeTable.add('GET', '/asyncapi.json', asyncApiRoute(this.config.operators, () => this.asyncapi()));
      const tokens = this.config.operators;
      const setup = Object.keys(tokens).length === 0 ? undefined : {
        ...this.config, // redact, logger
        tokens,
        overview: async () => serviceOverview(await this.health(), this.activity, Date.now()),
        operator: () => this.operator,
      };
      addConsoleRoutes(this.routeTable, setup);
    }
    return this.routeTable;
  }

  /** What `GET <path>/health` answers: `{ healthy }`, and the details only to an operator (`Authorization: Bearer <console token>`). */
  private async healthResponse(request: RouteRequest): Promise<RouteResponse> {
    const status = await this.health();
    const { authorization } = request.headers;
    const operator = operatorOf(this.config.operators, typeof authorization === 'string' ? authorization : undefined);
    const body = operator === undefined ? { healthy: status.healthy } : { ...status };
    return { status: status.healthy ? 200 : 503, headers: { 'cache-control': 'no-store' }, body };
  }

  /** The receiver itself, for any other framework: pass the exact bytes received. */
  handle(request: ReceiverRequest): Promise<ReceiverResponse> {
    return this.receiverFor('handle').handle(request);
  }

  /** Pending deliveries and dead letters in the outbox, per target (PostgreSQL: this service's rows). */
  outboxStats(): Promise<OutboxStats> {
    return this.outbox.stats();
  }

  /**
   * Dead letters, oldest first: all, or those matching `filter`. The outbox's (deliveries this
   * service could not make) and, on a broker, its own queue's (events it could not handle); `more`
   * counts those left out by `filter.limit`.
   */
  deadLetters(filter?: DeadLetterFilter): Promise<DeadLetterList> {
    return this.operator.deadLetters(filter);
  }

  /**
   * Puts dead letters back to be delivered, due now, attempts reset, and wakes the dispatcher;
   * resolves with how many. `selection`: their ids (as listed), a filter, or `'all'`.
   * @example await bus.replayDeadLetters({ target: 'payments' })
   */
  async replayDeadLetters(selection: DeadLetterSelection): Promise<number> {
    const count = await this.operator.replay(selection);
    if (count > 0) this.config.logger.info('dead letters replayed', { count });
    return count;
  }

  /** Deletes dead letters for good; resolves with how many. `selection` as for `replayDeadLetters`. */
  async discardDeadLetters(selection: DeadLetterSelection): Promise<number> {
    const count = await this.operator.discard(selection);
    if (count > 0) this.config.logger.info('dead letters discarded', { count });
    return count;
  }

  /**
   * Stops accepting events (emit throws, the middleware answers 503), waits up to
   * `shutdownTimeoutMs` for in-flight deliveries and handlers, then releases sockets, timers and
   * stores. What is left stays in a durable outbox; an in-memory outbox logs it as an error.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const deadline = Date.now() + this.config.shutdownTimeoutMs;
    this.admission.close(); // emits waiting for the backlog to drain resolve now: their events are recorded
    clearImmediate(this.resuming);
    clearInterval(this.poll);
    clearImmediate(this.consumerStart);
    await Promise.all([this.dispatcher.stop(deadline), this.receiver.pipeline.close(deadline), this.consumer?.stop(deadline)]);
    await this.transport.close(); // aborts deliveries still in flight past the deadline …
    await this.dispatcher.stop(Date.now() + ABORT_SETTLE_MS); // … which settle back into the outbox
    await this.broker?.close(); // unacked messages go back to the queue, for another instance
    if (!this.outbox.durable) {
      // One error line per lost delivery, with its event id; the body only at debug (payloads never above it).
      const { logger } = this.config;
      for (const record of await this.outbox.pendingRecords()) {
        logger.error('undelivered at shutdown; the in-memory outbox does not keep it (set EVENTS_OUTBOX_PATH)', {
          ...whatAndWhere(record),
          attempt: record.attempts,
          lastStatus: record.lastStatus,
          lastError: record.lastError,
        });
        if (logger.isDebugEnabled()) logger.debug('undelivered event body', { eventId: record.eventId, target: record.target, body: record.body });
      }
    }
    this.telemetry.close();
    // The stores get until the deadline (at least the settle time past it), even from a database that hangs.
    const storesBy = Math.max(deadline, Date.now() + ABORT_SETTLE_MS);
    await Promise.all([this.outbox.close(storesBy), this.inbox.close(storesBy), this.brokerOperator?.close()]);
  }

  /** The broker consumer, on the same receive pipeline as the HTTP intake (it turns the timestamp window off per message). */
  private createConsumer(): void {
    const service = this.requireService('subscribeTo with a broker');
    this.consumer = this.broker!.consumer({
      service,
      keys: this.config.keys,
      concurrency: this.config.concurrency,
      pipeline: this.receiverFor('subscribeTo with a broker').pipeline,
      types: () => this.catalog.subscribedTypes(),
    });
    // Its own dead-letter queue, beside the outbox's dead letters (distinct ids: each backend makes its own).
    const { url, prefix } = this.config.broker!;
    this.brokerOperator = openBrokerOperator({ broker: url, prefix, service });
    this.operator = combineOperators([this.outbox, this.brokerOperator]);
  }

  private receiverFor(what: string): Receiver {
    if (this.config.keys.length === 0) {
      throw new ConfigError(`${what} needs this service's secret to verify events: set EVENTS_SECRET (a whsec_… value)`, {
        variable: 'EVENTS_SECRET',
      });
    }
    return this.receiver;
  }

  private pathOf(options: MiddlewareOptions): string {
    const path = options.path ?? this.config.path;
    if (typeof path !== 'string' || !path.startsWith('/')) throw new ConfigError('the middleware path must start with "/"');
    return path;
  }

  private target(name: string): ResolvedTarget {
    let target = this.targets.get(name);
    if (!target) {
      target = resolveTarget(this.config, name);
      this.targets.set(name, target);
    }
    return target;
  }

  private requireService(what: string): string {
    if (!this.config.service) {
      throw new ConfigError(`${what} needs this service's name: set EVENTS_SERVICE_NAME (or pass service to createEventBus)`, {
        variable: 'EVENTS_SERVICE_NAME',
      });
    }
    return this.config.service;
  }
}

/** Why `declareEvent(type, { schema })` needs a broker. */
const HTTP_NEEDS_TARGETS =
  'over HTTP push each event is POSTed to the address of each target service, so name them (e.g. ["payments"]); ' +
  'through a broker (EVENTS_BROKER_URL) it goes to every service that subscribes to its type';

/** Longest `emit(…, { key })`. */
const MAX_KEY_LENGTH = 1024;

/** Creates an isolated bus. Options win over `EVENTS_*` environment variables. */
export function createEventBus<Events extends object = EventRegistry>(options: EventBusOptions = {}): EventBus<Events> {
  return new EventBus<Events>(options);
}

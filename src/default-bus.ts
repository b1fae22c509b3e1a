import { EventBus } from './bus.js';
import { type EventBusOptions, flag } from './config.js';
import { DEFAULTS } from './defaults.js';
import { ConfigError } from './errors/index.js';
import type { ExpressMiddleware, MiddlewareOptions } from './adapters/express.js';
import type { FastifyPlugin } from './adapters/fastify.js';
import type { FetchHandler } from './adapters/fetch.js';
import type { KoaMiddleware } from './adapters/koa.js';
import type { NodeHandler } from './adapters/node.js';
import type { AsyncApiDocument } from './contracts/asyncapi.js';
import type { ServiceName } from './service-names.js';
import { isDecoratorCall, subscribeDecorator, type SubscribeDecorator } from './subscribe-decorator.js';
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

/**
 * The module-level functions act on one default bus, configured from `EVENTS_*` variables when
 * first used (so the package loads with no environment set). `close()` closes it and forgets
 * it: the next use builds a fresh one from the environment as it is then.
 */
let defaultBus: EventBus | undefined;
let defaultOptions: DefaultBusOptions = {};

/** Options of the module-level default bus: those of `createEventBus`, and what only a process-wide bus may do. */
export interface DefaultBusOptions extends EventBusOptions {
  /**
   * On SIGTERM or SIGINT, close the default bus (waiting up to `shutdownTimeoutMs` for deliveries
   * and handlers; whatever an in-memory outbox still holds is logged with its event id), then
   * re-raise the signal so that the process exits by it — unless the application listens for that
   * signal itself, in which case its own listener owns the exit. A second signal while draining
   * stops waiting. `false` (or `EVENTS_HANDLE_SIGNALS=false`) installs nothing.
   * @default true
   */
  handleSignals?: boolean;
}

/** The default bus, built on first use from `configure()`'s options over the environment. */
export function getDefaultBus(): EventBus {
  if (!defaultBus) {
    defaultBus = new EventBus(defaultOptions);
    if (handlesSignals(defaultOptions)) installSignalHandlers(defaultBus);
  }
  return defaultBus;
}

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;
/** The listener installed for the current default bus, if any. */
let onSignal: ((signal: NodeJS.Signals) => void) | undefined;

function handlesSignals(options: DefaultBusOptions): boolean {
  const variable = (options.env ?? process.env).EVENTS_HANDLE_SIGNALS;
  return options.handleSignals ?? flag(variable, 'EVENTS_HANDLE_SIGNALS') ?? DEFAULTS.handleSignals;
}

function installSignalHandlers(bus: EventBus): void {
  const listener = (signal: NodeJS.Signals): void => {
    bus.logger.info('signal received; draining the event bus before exit', { signal });
    // close() removes this listener at once (so a second signal while draining takes its default
    // action: exit now); once drained, the signal is raised again, for the process to exit by it.
    close().then(
      () => reraise(signal),
      (error: unknown) => {
        bus.logger.error('closing the event bus on a signal failed', { signal, error: (error as Error)?.message ?? String(error) });
        reraise(signal);
      },
    );
  };
  for (const signal of SIGNALS) process.on(signal, listener);
  onSignal = listener;
}

function removeSignalHandlers(): void {
  if (!onSignal) return;
  for (const signal of SIGNALS) process.off(signal, onSignal);
  onSignal = undefined;
}

/**
 * Raises `signal` again so that the process exits by it, unless a listener of the application's
 * handles it (then that listener owns the exit, as it would without this library). Listeners of
 * `signal-exit` (exit hooks many tools install) do not count: they re-raise the signal themselves
 * once they are the only ones left, so they would otherwise wait for us while we wait for them.
 */
function reraise(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > exitHookListeners()) return;
  process.kill(process.pid, signal);
}

/** Signal listeners installed by `signal-exit` (v4 and v3 keep their counts on these globals), one per loaded copy. */
function exitHookListeners(): number {
  const v4 = (globalThis as Record<symbol, { count?: unknown } | undefined>)[Symbol.for('signal-exit emitter')]?.count;
  const v3 = (process as { __signal_exit_emitter__?: { count?: unknown } }).__signal_exit_emitter__?.count;
  return (typeof v4 === 'number' ? v4 : 0) + (typeof v3 === 'number' ? v3 : 0);
}

/**
 * Options for the default bus (a logger, timeouts, …), over the environment. Call it before the
 * first module-level call; after that it throws, since the bus is already built (call `close()` first).
 *
 * @example
 * configure({ logger: myWinstonLogger, shutdownTimeoutMs: 10_000, handleSignals: false });
 */
export function configure(options: DefaultBusOptions): void {
  if (defaultBus) {
    throw new ConfigError('configure() must run before the first declareEvent/emit/subscribeTo/middleware call (or after close())');
  }
  defaultOptions = { ...options };
}

/** Declares that this service emits `type` to `targetServices`, or without them to every subscriber through a broker (see EventBus.declareEvent). */
export function declareEvent(type: string, targetServices: readonly ServiceName[], options?: DeclareOptions): void;
export function declareEvent(type: string, options?: DeclareOptions): void;
export function declareEvent(type: string, targetServices?: readonly ServiceName[] | DeclareOptions, options?: DeclareOptions): void {
  (getDefaultBus() as unknown as { declareEvent: (...args: unknown[]) => void }).declareEvent(type, targetServices, options);
}

/** Runs `handler` for every `type` event received; returns an unsubscribe function. */
export function subscribeTo<const T extends string, const S extends JSONSchema>(
  type: T,
  handler: EventHandler<DataOf<S>>,
  options: SubscribeOptions<S> & { schema: S },
): Unsubscribe;
export function subscribeTo<const T extends string>(
  type: T,
  handler: EventHandler<NoInfer<PayloadOf<EventRegistry, T>>>,
  options?: SubscribeOptions,
): Unsubscribe;
/** Without a handler: a method decorator on the default bus, resolved when an instance subscribes (see EventBus.subscribeTo). */
export function subscribeTo<const T extends string, const S extends JSONSchema>(
  type: T,
  options: SubscribeOptions<S> & { schema: S },
): SubscribeDecorator<DataOf<S>>;
export function subscribeTo<const T extends string>(type: T, options?: SubscribeOptions): SubscribeDecorator<NoInfer<PayloadOf<EventRegistry, T>>>;
export function subscribeTo(type: string, ...rest: unknown[]): unknown {
  // The overloads above carry the types; the bus is reached without re-resolving them.
  const bus = (): { subscribeTo: (...args: unknown[]) => Unsubscribe } => getDefaultBus() as never;
  if (isDecoratorCall(rest)) return subscribeDecorator(type, (rest[0] ?? {}) as SubscribeOptions, (...args) => bus().subscribeTo(...args));
  return bus().subscribeTo(type, ...rest);
}

/** Validates and records the event for delivery; resolves with its id (see EventBus.emit). */
export function emit<const T extends EmittableType<EventRegistry>>(
  type: T,
  payload: NoInfer<PayloadOf<EventRegistry, T>>,
  options?: EmitOptions,
): Promise<EmitReceipt> {
  return getDefaultBus().emit(type, payload, options);
}

/** The default bus's AsyncAPI 3.0 document (see EventBus.asyncapi). */
export function asyncapi(): AsyncApiDocument {
  return getDefaultBus().asyncapi();
}

/** Express middleware answering `POST /events` for the default bus. */
export function eventsMiddleware(options?: MiddlewareOptions): ExpressMiddleware {
  return getDefaultBus().expressMiddleware(options);
}

/** Koa middleware answering `POST /events` for the default bus. */
export function koaEventsMiddleware(options?: MiddlewareOptions): KoaMiddleware {
  return getDefaultBus().koaMiddleware(options);
}

/** A plain `node:http` handler answering `POST /events` for the default bus. */
export function nodeEventsHandler(options?: MiddlewareOptions): NodeHandler {
  return getDefaultBus().nodeHandler(options);
}

/** A Fastify plugin answering `POST /events` for the default bus: `app.register(fastifyEventsPlugin())`. */
export function fastifyEventsPlugin(options?: MiddlewareOptions): FastifyPlugin {
  return getDefaultBus().fastifyPlugin(options);
}

/** A web-standard `(request) => Promise<Response>` answering `POST /events` for the default bus. */
export function eventsFetchHandler(options?: MiddlewareOptions): FetchHandler {
  return getDefaultBus().fetchHandler(options);
}

/** Closes the default bus (bounded wait for in-flight work) so that the process can exit. */
export async function close(): Promise<void> {
  const bus = defaultBus;
  defaultBus = undefined;
  removeSignalHandlers();
  // A close() called while another drains (a SIGTERM listener of the app's, next to ours) waits for it too.
  if (bus) lastClose = bus.close();
  await lastClose;
}

/** The last default bus's close(), which a later close() call waits for. */
let lastClose: Promise<void> | undefined;

import { EventBus } from './bus.js';
import type { EventBusOptions } from './config.js';
import { ConfigError } from './errors/index.js';
import type { ExpressMiddleware, MiddlewareOptions } from './adapters/express.js';
import type { KoaMiddleware } from './adapters/koa.js';
import type { NodeHandler } from './adapters/node.js';
import type {
  DataOf,
  DeclareOptions,
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
let defaultOptions: EventBusOptions = {};

/** The default bus, built on first use from `configure()`'s options over the environment. */
export function getDefaultBus(): EventBus {
  defaultBus ??= new EventBus(defaultOptions);
  return defaultBus;
}

/**
 * Options for the default bus (a logger, timeouts, …), over the environment. Call it before the
 * first module-level call; after that it throws, since the bus is already built (call `close()` first).
 *
 * @example
 * configure({ logger: myWinstonLogger, shutdownTimeoutMs: 10_000 });
 */
export function configure(options: EventBusOptions): void {
  if (defaultBus) {
    throw new ConfigError('configure() must run before the first declareEvent/emit/subscribeTo/middleware call (or after close())');
  }
  defaultOptions = { ...options };
}

/** Declares that this service emits `type` to `targetServices` (see EventBus.declareEvent). */
export function declareEvent(type: string, targetServices: readonly string[], options?: DeclareOptions): void {
  getDefaultBus().declareEvent(type, targetServices, options);
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
export function subscribeTo(type: string, handler: EventHandler<never>, options?: SubscribeOptions): Unsubscribe {
  // The overloads above carry the types; the bus is reached without re-resolving them.
  const bus = getDefaultBus() as unknown as { subscribeTo: (...args: unknown[]) => Unsubscribe };
  return bus.subscribeTo(type, handler, options);
}

/** Validates and records the event for delivery; resolves with its id (see EventBus.emit). */
export function emit<const T extends EmittableType<EventRegistry>>(
  type: T,
  payload: NoInfer<PayloadOf<EventRegistry, T>>,
): Promise<EmitReceipt> {
  return getDefaultBus().emit(type, payload);
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

/** Closes the default bus (bounded wait for in-flight work) so that the process can exit. */
export async function close(): Promise<void> {
  const bus = defaultBus;
  defaultBus = undefined;
  await bus?.close();
}

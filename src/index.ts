// The public API, at a glance. Everything not listed here is internal.
export {
  asyncapi,
  close,
  configure,
  declareEvent,
  emit,
  eventsFetchHandler,
  eventsMiddleware,
  fastifyEventsPlugin,
  getDefaultBus,
  koaEventsMiddleware,
  nodeEventsHandler,
  subscribeTo,
} from './default-bus.js';
export type { DefaultBusOptions } from './default-bus.js';
export { EventBus, createEventBus } from './bus.js';
export { decoratedMethods } from './subscribe-decorator.js';
export { defineServices } from './service-names.js';
export type { DefinedServices, ServiceName, ServiceRegistry } from './service-names.js';
export type { DecoratedMethod, HandlerMethod, SubscribeDecorator } from './subscribe-decorator.js';
export { discardDeadLetters, inspectOutbox, listDeadLetters, replayDeadLetters } from './operate/functions.js';
export {
  BusClosedError,
  ConfigError,
  EventsError,
  NonRetryableError,
  OutboxFullError,
  OutboxUnavailableError,
  PayloadTooDeepError,
  PayloadTooLargeError,
  RetryLaterError,
  UndeclaredEventError,
  ValidationError,
} from './errors/index.js';
export { DEFAULTS } from './defaults.js';

export type { ExpressLikeRequest, ExpressMiddleware, MiddlewareOptions } from './adapters/express.js';
export type { FastifyLikeInstance, FastifyLikeReply, FastifyLikeRequest, FastifyPlugin } from './adapters/fastify.js';
export type { FetchHandler } from './adapters/fetch.js';
export type { KoaLikeContext, KoaMiddleware } from './adapters/koa.js';
export type { NodeHandler } from './adapters/node.js';
export type { KafkaClientLike } from './backends/kafka/api.js';
export type {
  BatchOptions,
  BrokerOptions,
  ConsoleOptions,
  KafkaOptions,
  EventBusOptions,
  HealthOptions,
  InboxOptions,
  OutboxOptions,
  PgPoolLike,
  RedeliveryOptions,
  RetryOptions,
  SecretInput,
  ServiceEntry,
  TlsOptions,
} from './config.js';
export type { CloudEvent } from './protocol/cloudevents.js';
export type { AsyncApiDocument } from './contracts/asyncapi.js';
export type { DeliveredReport, OnDeadLetter, OnDelivered } from './observe/hooks.js';
export type { ConnectionHealth, HealthStatus, TargetHealth } from './observe/health.js';
export type { ReceiverRequest, ReceiverResponse } from './receive/receiver.js';
export type {
  DeadLetter,
  DeadLetterFilter,
  DeadLetterList,
  DeadLetterOperator,
  DeadLetterPage,
  DeadLetterSelection,
  OperatorLocation,
  OutboxStats,
  PageRequest,
} from './operate/operator.js';
export type { OutboxRecord } from './send/outbox-store.js';
export type { Delivery, DeliveryHint, DeliveryResult, Transport } from './send/transport.js';
export type {
  DatabasePool,
  DataOf,
  DeclareOptions,
  EmitOptions,
  EmitReceipt,
  EmittableType,
  EventHandler,
  EventRegistry,
  HandlerContext,
  JSONSchema,
  PayloadOf,
  ReceivedEvent,
  SubscribeOptions,
  TransactionClient,
  Unsubscribe,
} from './types.js';

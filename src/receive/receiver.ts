import type { Logger } from 'winston';
import type { Catalog, Subscription } from '../catalog.js';
import { NonRetryableError, RetryLaterError, ValidationError } from '../errors/index.js';
import { type CloudEvent, detectMode, header, type Headers, parseEvents } from '../protocol/cloudevents.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import { verify, type VerifyFailure } from '../protocol/signature.js';
import type { ReceivedEvent } from '../types.js';
import { eventKey, type InboxStore } from './inbox-store.js';

/** A request as any framework sees it: the adapters translate to and from these. */
export interface ReceiverRequest {
  headers: Headers;
  /** The exact bytes received: the signature is checked over them. */
  body: Buffer;
}

export interface ReceiverResponse {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

export interface ReceiverOptions {
  catalog: Catalog;
  inbox: InboxStore;
  logger: Logger;
  keys: readonly Buffer[];
  toleranceSeconds: number;
  bodyLimitBytes: number;
  /** This service's name, for log lines. */
  service: string | undefined;
  /**
   * Refuse a `webhook-timestamp` outside ±`toleranceSeconds`. Off for broker receipt: a message may
   * wait in its queue for hours while the service is down, and replays are caught by the inbox's
   * dedupe and kept out by the broker's access control. The signature is checked either way.
   * @default true
   */
  checkTimestamp?: boolean;
}

const VERIFY_MESSAGES: Record<VerifyFailure, string> = {
  'missing-headers': 'missing webhook-id, webhook-timestamp or webhook-signature header',
  'bad-timestamp': 'webhook-timestamp is not a Unix time in seconds',
  'timestamp-too-old': 'webhook-timestamp is too old (more than the allowed tolerance)',
  'timestamp-too-new': 'webhook-timestamp is too far in the future (more than the allowed tolerance)',
  'no-matching-signature': 'no webhook-signature matches',
};

/** Seconds a sender is asked to wait while this service shuts down. */
const SHUTDOWN_RETRY_AFTER_S = 5;

/**
 * The framework-agnostic receiving side: verify → parse → validate → dedupe → handlers.
 * Every refusal answers a status and a message that says what is wrong, and never reaches a handler.
 */
export class Receiver {
  private closing = false;
  private active = 0;
  private readonly running = new Map<string, Promise<ReceiverResponse>>();

  constructor(private readonly o: ReceiverOptions) {}

  async handle(request: ReceiverRequest): Promise<ReceiverResponse> {
    const startedAt = performance.now();
    if (this.closing) {
      return this.refuse(new ProtocolError(503, 'shutting_down', 'this service is shutting down; retry later'), startedAt, {
        'retry-after': String(SHUTDOWN_RETRY_AFTER_S),
      });
    }
    this.active += 1;
    try {
      return await this.process(request, startedAt);
    } catch (error) {
      if (error instanceof ProtocolError) return this.refuse(error, startedAt);
      throw error;
    } finally {
      this.active -= 1;
    }
  }

  /** Answers 413 for a body over the limit (used by adapters that stop reading early). */
  tooLarge(): ReceiverResponse {
    return this.refuse(
      new ProtocolError(413, 'payload_too_large', `the body is larger than the limit of ${this.o.bodyLimitBytes} bytes`),
      performance.now(),
    );
  }

  /** Starts answering 503 to new events; resolves when in-flight handlers finish or at `deadline`. */
  async shutdown(deadline: number): Promise<void> {
    this.closing = true;
    while (this.active > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(20, deadline - Date.now())));
    }
  }

  private async process(request: ReceiverRequest, startedAt: number): Promise<ReceiverResponse> {
    const { headers, body } = request;
    if (body.length > this.o.bodyLimitBytes) return this.tooLarge();
    const failure = verify(
      this.o.keys,
      {
        id: header(headers, 'webhook-id'),
        timestamp: header(headers, 'webhook-timestamp'),
        signature: header(headers, 'webhook-signature'),
        body,
      },
      this.o.checkTimestamp === false ? Infinity : this.o.toleranceSeconds,
    );
    if (failure) throw new ProtocolError(401, 'invalid_signature', VERIFY_MESSAGES[failure]);
    // Only an authenticated sender learns anything about the content (415 / 400).
    const mode = detectMode(headers);
    const events = parseEvents(mode, headers, body);
    if (mode !== 'batch') return this.deliverOne(events[0]!, startedAt);

    const results: ReceiverResponse[] = [];
    for (const event of events) {
      try {
        results.push(await this.deliverOne(event, startedAt));
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error;
        results.push(this.refuse(error, startedAt, {}, event));
      }
    }
    const worst = results.reduce((a, b) => (severity(b.status) > severity(a.status) ? b : a), results[0] ?? ok({}));
    return { status: worst.status, headers: worst.headers, body: { results: results.map((r) => ({ status: r.status, ...r.body })) } };
  }

  private deliverOne(event: CloudEvent, startedAt: number): Promise<ReceiverResponse> {
    const subscribers = this.o.catalog.subscribers(event.type);
    if (subscribers.length === 0) {
      throw new ProtocolError(404, 'no_subscriber', `no subscriber for event type "${event.type}" at this service`);
    }
    for (const subscription of subscribers) {
      try {
        this.o.catalog.check(event.type, subscription.validate, event.data);
      } catch (error) {
        if (error instanceof ValidationError) throw new ProtocolError(400, 'invalid_data', error.message);
        throw error;
      }
    }
    const key = eventKey(event.source, event.id);
    const running = this.running.get(key);
    if (running) return running.then((response) => (response.status < 300 ? duplicate(event) : response));
    const done = this.runHandlers(key, event as ReceivedEvent, subscribers, startedAt).finally(() => this.running.delete(key));
    this.running.set(key, done);
    return done;
  }

  private async runHandlers(
    key: string,
    event: ReceivedEvent,
    subscribers: readonly Subscription[],
    startedAt: number,
  ): Promise<ReceiverResponse> {
    const { inbox, logger } = this.o;
    const completed = inbox.completed(key);
    if (completed === true) {
      this.logReceipt('event received again; already processed', event, 200, startedAt);
      return duplicate(event);
    }
    const pending = subscribers.filter((s) => !completed?.has(s.key));
    const outcomes = await Promise.all(
      pending.map(async (subscription) => {
        try {
          await subscription.handler(event.data, event);
          inbox.markHandler(key, subscription.key);
          return undefined;
        } catch (error) {
          logger.error('handler failed', {
            ...eventFields(event),
            handler: subscription.key,
            error: (error as Error)?.message ?? String(error),
            stack: (error as Error)?.stack,
          });
          return error;
        }
      }),
    );
    const errors = outcomes.filter((e) => e !== undefined);
    if (errors.length === 0) {
      inbox.markDone(key);
      this.logReceipt('event received', event, 200, startedAt, { handlers: pending.length });
      return ok({ status: 'delivered', id: event.id });
    }
    const response = handlerFailure(errors, pending.length);
    this.logReceipt('event handling failed', event, response.status, startedAt, { failed: errors.length });
    return response;
  }

  private refuse(error: ProtocolError, startedAt: number, headers: Record<string, string> = {}, event?: CloudEvent): ReceiverResponse {
    this.o.logger.warn('event refused', {
      ...(event ? eventFields(event) : {}),
      target: this.o.service,
      status: error.status,
      reason: error.code,
      error: error.message,
      durationMs: elapsed(startedAt),
    });
    return { status: error.status, headers, body: { error: error.code, message: error.message } };
  }

  private logReceipt(message: string, event: CloudEvent, status: number, startedAt: number, extra: object = {}): void {
    const level = status < 300 ? 'info' : 'warn';
    if (!this.o.logger.isLevelEnabled(level)) return;
    this.o.logger.log(level, message, {
      ...eventFields(event),
      target: this.o.service,
      status,
      durationMs: elapsed(startedAt),
      ...extra,
    });
    if (this.o.logger.isDebugEnabled()) this.o.logger.debug('event data', { eventId: event.id, data: event.data });
  }
}

/** Retry-later beats retry, which beats never-retry: no handler that could still succeed is given up on. */
function handlerFailure(errors: unknown[], total: number): ReceiverResponse {
  const later = errors.filter((e): e is RetryLaterError => e instanceof RetryLaterError);
  if (later.length > 0) {
    const seconds = Math.max(...later.map((e) => e.retryAfterSeconds));
    return {
      status: 503,
      headers: { 'retry-after': String(seconds) },
      body: { error: 'retry_later', message: later[0]!.message },
    };
  }
  const final = errors.filter((e): e is NonRetryableError => e instanceof NonRetryableError);
  if (final.length === errors.length) {
    return { status: final[0]!.status, headers: {}, body: { error: 'rejected_by_handler', message: final[0]!.message } };
  }
  return {
    status: 500,
    headers: {},
    body: { error: 'handler_failed', message: `${errors.length} of ${total} handlers failed; retry later` },
  };
}

function ok(body: Record<string, unknown>): ReceiverResponse {
  return { status: 200, headers: {}, body };
}

function duplicate(event: CloudEvent): ReceiverResponse {
  return ok({ status: 'duplicate', id: event.id });
}

function severity(status: number): number {
  if (status === 503) return 4;
  if (status >= 500) return 3;
  if (status >= 400) return 2;
  return 1;
}

function eventFields(event: CloudEvent): Record<string, unknown> {
  return { eventId: event.id, type: event.type, source: event.source };
}

function elapsed(startedAt: number): number {
  return Math.round((performance.now() - startedAt) * 10) / 10;
}

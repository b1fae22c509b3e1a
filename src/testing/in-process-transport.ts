import type { RetryOptions } from '../config.js';
import { STRUCTURED_CONTENT_TYPE } from '../protocol/cloudevents.js';
import { signatureHeader } from '../protocol/signature.js';
import type { ReceiverRequest, ReceiverResponse } from '../receive/receiver.js';
import { backoffMs, isFinalStatus, isRetryableStatus, isTargetDownStatus, parseRetryAfter } from '../send/retry-policy.js';
import type { Delivery, DeliveryResult, Transport } from '../send/transport.js';

/** Where a delivery goes: the receiving bus's `handle`, or undefined when no such service is in the network. */
export type InProcessRoute = (service: string) => ((request: ReceiverRequest) => Promise<ReceiverResponse>) | undefined;

export interface InProcessTransportOptions {
  route: InProcessRoute;
  /** Immediate retries, as the HTTP transport makes them. */
  retry: RetryOptions;
}

const RESPONSE_SNIPPET = 300;

/**
 * Delivers without a socket: signs each try exactly as the HTTP transport does (a fresh
 * `webhook-timestamp`, one `v1` signature per key of the target), hands the request to the
 * target bus's `handle()`, and reads the answer with the HTTP transport's rules: 2xx delivered;
 * 400, 410, 413, 415, 422 and a handler's NonRetryableError refused (dead letter); 408, 429 and
 * 5xx retried in place, then like every other failure redelivered from the outbox.
 */
export class InProcessTransport implements Transport {
  /** Sends in progress (a handler running counts: it runs inside the send). */
  inFlight = 0;
  private readonly aborter = new AbortController();

  constructor(private readonly options: InProcessTransportOptions) {}

  async send(delivery: Delivery): Promise<DeliveryResult> {
    this.inFlight += 1;
    try {
      const { retries, baseDelayMs, maxDelayMs, maxRetryAfterMs } = this.options.retry;
      for (let tries = 1; ; tries += 1) {
        const result = await this.tryOnce(delivery);
        const inPlace =
          result.outcome === 'retry' &&
          (result.status === undefined || isRetryableStatus(result.status)) &&
          (result.retryAfterMs === undefined || result.retryAfterMs <= maxRetryAfterMs);
        if (!inPlace || tries > retries || this.aborter.signal.aborted) return { ...result, attempts: tries };
        await this.sleep(Math.max(backoffMs(tries, baseDelayMs, maxDelayMs), result.retryAfterMs ?? 0));
        if (this.aborter.signal.aborted) return { ...result, attempts: tries };
      }
    } finally {
      this.inFlight -= 1;
    }
  }

  async close(): Promise<void> {
    this.aborter.abort();
  }

  private async tryOnce(delivery: Delivery): Promise<Omit<DeliveryResult, 'attempts'>> {
    const handle = this.options.route(delivery.target.name);
    if (!handle) {
      return {
        outcome: 'retry',
        error: `ECONNREFUSED: no service "${delivery.target.name}" in the test network (add it with network.bus() or network.add())`,
        targetDown: true,
      };
    }
    const body = Buffer.from(delivery.body);
    const timestamp = Math.floor(Date.now() / 1000);
    const request: ReceiverRequest = {
      headers: {
        'content-type': STRUCTURED_CONTENT_TYPE,
        'content-length': String(body.length),
        'webhook-id': delivery.eventId,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signatureHeader(delivery.target.keys, delivery.eventId, timestamp, body),
      },
      body,
    };
    let response: ReceiverResponse;
    try {
      response = await handle(request);
    } catch (error) {
      // What a mounted middleware answers for an error the receiver did not expect.
      return { outcome: 'retry', status: 500, error: `HTTP 500: ${(error as Error)?.message ?? String(error)}` };
    }
    return toResult(response);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const signal = this.aborter.signal;
      signal.addEventListener('abort', done, { once: true });
      function done(): void {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
    });
  }
}

/** The receiver's answer read as the HTTP transport reads a target's answer. */
function toResult(response: ReceiverResponse): Omit<DeliveryResult, 'attempts'> {
  const { status, body } = response;
  if (status >= 200 && status < 300) return { outcome: 'delivered', status, receipt: isReceipt(body) };
  const retryAfterMs = parseRetryAfter(response.headers['retry-after']);
  const final = isFinalStatus(status) || (status < 500 && body.error === 'rejected_by_handler');
  return {
    outcome: final ? 'refused' : 'retry',
    status,
    error: `HTTP ${status}: ${JSON.stringify(body).slice(0, RESPONSE_SNIPPET)}`,
    targetDown: isTargetDownStatus(status),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  };
}

function isReceipt(body: Record<string, unknown>): boolean {
  return (body.status === 'delivered' || body.status === 'duplicate') && typeof body.id === 'string';
}

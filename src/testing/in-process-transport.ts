import type { RetryOptions } from '../config.js';
import type { ReceiverRequest, ReceiverResponse } from '../receive/receiver.js';
import type { RequestInFlight } from '../backends/http/request.js';
import { RetryInPlace, type TryOutcome } from '../backends/http/retry-in-place.js';
import type { Delivery, DeliveryResult, Transport } from '../send/transport.js';

/** Where a delivery goes: the receiving bus's `handle`, or undefined when no such service is in the network. */
export type InProcessRoute = (service: string) => ((request: ReceiverRequest) => Promise<ReceiverResponse>) | undefined;

export interface InProcessTransportOptions {
  route: InProcessRoute;
  /** Immediate retries, as the HTTP transport makes them. */
  retry: RetryOptions;
}

/**
 * Delivers without a socket: each try is signed, retried in place and its answer read exactly as
 * by the HTTP transports (RetryInPlace), and handed to the target bus's `handle()` instead of a
 * socket: 2xx delivered; 400, 410, 413, 415, 422 and a handler's NonRetryableError refused (dead
 * letter); 408, 429 and 5xx retried in place, then like every other failure redelivered from the outbox.
 */
export class InProcessTransport implements Transport {
  /** Sends in progress (a handler running counts: it runs inside the send). */
  inFlight = 0;
  /** Why the last send to each target failed (its answer, and what to check), until one succeeds: `settled()` names it. */
  readonly failures = new Map<string, string>();
  private readonly sender: RetryInPlace;

  constructor(private readonly options: InProcessTransportOptions) {
    this.sender = new RetryInPlace({ retry: options.retry, post: (request, headers) => this.post(request, headers) });
  }

  async send(delivery: Delivery): Promise<DeliveryResult> {
    this.inFlight += 1;
    try {
      const result = await this.sender.send(delivery);
      const { name } = delivery.target;
      if (result.outcome === 'delivered') this.failures.delete(name);
      else this.failures.set(name, [result.error, result.hint?.message].filter(Boolean).join('; '));
      return result;
    } finally {
      this.inFlight -= 1;
    }
  }

  async close(): Promise<void> {
    this.sender.close();
  }

  private async post(request: RequestInFlight, headers: Record<string, string>): Promise<TryOutcome> {
    const { name } = request.first.target;
    const handle = this.options.route(name);
    if (!handle) return { error: `ECONNREFUSED: no service "${name}" in the test network (add it with network.bus() or network.add())` };
    const body = Buffer.from(request.body);
    let response: ReceiverResponse;
    try {
      response = await handle({
        headers: {
          'content-type': headers['content-type'],
          'content-length': String(body.length),
          'webhook-id': headers['webhook-id'],
          'webhook-timestamp': headers['webhook-timestamp'],
          'webhook-signature': headers['webhook-signature'],
        },
        body,
      });
    } catch (error) {
      // What a mounted middleware answers for an error the receiver did not expect.
      return { status: 500, header: () => undefined, text: (error as Error)?.message ?? String(error) };
    }
    return { status: response.status, header: (header) => response.headers[header], text: JSON.stringify(response.body) };
  }
}

import type { ResolvedConfig } from '../config.js';
import { type BatchResult, type Headers, singleHeader } from '../protocol/cloudevents.js';
import { checkSignatureHeaders } from '../protocol/signature.js';
import { type PipelineOptions, ReceivePipeline, signatureHeaders, VERIFY_MESSAGES } from './pipeline.js';
import { type BudgetClaim, UnverifiedBudget } from './unverified-budget.js';
import { type Refusal, retryAfterSecondsOf, statusOf, type Verdict } from './verdict.js';

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

/** The pipeline's, and the configuration's limits of HTTP bodies (see EventBusOptions). */
export type ReceiverOptions = PipelineOptions & Pick<ResolvedConfig, 'bodyLimitBytes' | 'bodyTimeoutMs' | 'bodyStartTimeoutMs' | 'maxUnverifiedBytes'>;

/** Why reading a body stopped before its end. */
export type BodyReadFailure = 'too-large' | 'idle' | 'timeout' | 'busy' | 'aborted' | 'size-mismatch';

/**
 * The HTTP intake: owns what only HTTP has (body limits, checks of the headers before the body is
 * read, the budget of unauthenticated bytes, a body a framework already consumed), hands the
 * exact bytes to the receive pipeline, and answers its verdict as a status, a receipt and
 * `Retry-After`. The adapters translate between a framework and this.
 */
export class Receiver {
  readonly pipeline: ReceivePipeline;
  private readonly unverified: UnverifiedBudget;

  constructor(private readonly o: ReceiverOptions) {
    this.pipeline = new ReceivePipeline(o);
    this.unverified = new UnverifiedBudget(o.maxUnverifiedBytes);
  }

  /** How long adapters that read the body themselves wait for it, and for its first byte, in ms. */
  get bodyTimeouts(): { timeoutMs: number; startTimeoutMs: number } {
    return { timeoutMs: this.o.bodyTimeoutMs, startTimeoutMs: this.o.bodyStartTimeoutMs };
  }

  /**
   * What the headers alone refuse, before a body byte is read: no signature headers, a
   * timestamp malformed or outside the window (401), a declared length over the limit (413), or
   * a closing service (503). Undefined when the body is worth reading.
   */
  preflight(headers: Headers): ReceiverResponse | undefined {
    const closed = this.pipeline.refuseIfClosed();
    if (closed) return responseOf(closed);
    const failure = checkSignatureHeaders(signatureHeaders(headers), this.o.toleranceSeconds);
    if (failure) return this.refuse({ kind: 'reject', reason: 'invalid_signature', message: VERIFY_MESSAGES[failure] });
    const declared = declaredLength(headers);
    if (declared !== undefined && declared > this.o.bodyLimitBytes) return this.tooLarge();
    return undefined;
  }

  /** A share of the unauthenticated-bytes budget for one request, empty: it grows as the body's bytes arrive. */
  claimUnverified(): BudgetClaim {
    return this.unverified.claim();
  }

  /** 503 + Retry-After: too many bytes of unauthenticated requests are held now. */
  busy(): ReceiverResponse {
    const message = 'too many unauthenticated request bodies are being read at once; retry later';
    return this.refuse({ kind: 'unavailable', reason: 'busy', message, afterMs: this.o.retryAfterSeconds * 1000 });
  }

  /** The answer when reading the body stopped early. */
  readFailed(failure: BodyReadFailure): ReceiverResponse {
    switch (failure) {
      case 'too-large':
        return this.tooLarge();
      case 'busy':
        return this.busy();
      case 'idle':
        return this.refuse({ kind: 'retry', reason: 'body_timeout', message: `no byte of the request body arrived within ${this.o.bodyStartTimeoutMs} ms` });
      case 'timeout':
        return this.refuse({ kind: 'retry', reason: 'body_timeout', message: `the request body did not arrive within ${this.o.bodyTimeoutMs} ms` });
      case 'size-mismatch':
        return this.refuse({ kind: 'reject', reason: 'body_length_mismatch', message: 'the body does not match its content-length' });
      case 'aborted':
        this.o.logger.debug('request aborted by the client before its body arrived', { target: this.o.service });
        return { status: 400, headers: {}, body: { error: 'aborted', message: 'the request was aborted' } };
    }
  }

  /**
   * 500: a body parser mounted before the middleware consumed the raw bytes, so the signature
   * cannot be checked. Logged here at error level, since the sender only sees a 500.
   */
  rawBodyUnavailable(middleware: string, hint: string): ReceiverResponse {
    const message =
      `${middleware}: a body parser mounted before it already read this request and did not keep the raw bytes, ` +
      `so the signature cannot be checked. Mount ${middleware} before the body parser, or ${hint}.`;
    const reason = 'raw_body_unavailable';
    this.o.logger.error('event refused: the raw body is gone, so its signature cannot be checked (fix the middleware order)', {
      target: this.o.service,
      status: 500,
      reason,
      error: message,
    });
    return { status: 500, headers: {}, body: { error: reason, message } };
  }

  /**
   * Verifies, parses, validates, dedupes and runs the handlers (the pipeline), and answers its
   * verdict. `onVerified` is called as soon as the signature is known good (adapters release the
   * request's unauthenticated-bytes claim then).
   */
  async handle(request: ReceiverRequest, onVerified?: () => void): Promise<ReceiverResponse> {
    if (request.body.length > this.o.bodyLimitBytes) {
      const closed = this.pipeline.refuseIfClosed();
      return closed ? responseOf(closed) : this.tooLarge();
    }
    const verdict = await this.pipeline.receive(request, { onVerified });
    return Array.isArray(verdict) ? batchResponseOf(verdict) : responseOf(verdict);
  }

  /** Answers 413 for a body over the limit (used by adapters that stop reading early). */
  tooLarge(): ReceiverResponse {
    return this.refuse({ kind: 'reject', reason: 'payload_too_large', message: `the body is larger than the limit of ${this.o.bodyLimitBytes} bytes` });
  }

  /** A refusal of the intake's own (logged as the pipeline logs its refusals), as an answer. */
  private refuse(verdict: Refusal): ReceiverResponse {
    return responseOf(this.pipeline.refuse(verdict, performance.now()));
  }
}

/** A verdict on one event, as an HTTP answer: the receipt (`delivered`, `duplicate`) or the refusal, with `Retry-After`. */
function responseOf(verdict: Verdict): ReceiverResponse {
  const { status, receipt, error, message, retryAfter } = batchResultOf(verdict);
  const body = receipt === undefined ? { error, message } : { status: receipt, id: verdict.id };
  return { status, headers: retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) }, body };
}

/** A batch's answer: one result per event, in order, with the worst status and the longest Retry-After any event asks. */
function batchResponseOf(verdicts: readonly Verdict[]): ReceiverResponse {
  const results = verdicts.map(batchResultOf);
  let status = 200;
  let retryAfter: number | undefined;
  for (const result of results) {
    if (severity(result.status) > severity(status)) status = result.status;
    if (result.retryAfter !== undefined) retryAfter = Math.max(retryAfter ?? 0, result.retryAfter);
  }
  return { status, headers: retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) }, body: { results } };
}

function batchResultOf(verdict: Verdict): BatchResult {
  const status = statusOf(verdict);
  const result: BatchResult = verdict.id === undefined ? { status } : { id: verdict.id, status };
  if (verdict.kind === 'done' || verdict.kind === 'duplicate') {
    result.receipt = verdict.kind === 'done' ? 'delivered' : 'duplicate';
    return result;
  }
  result.error = verdict.reason;
  result.message = verdict.message;
  const retryAfter = retryAfterSecondsOf(verdict);
  if (retryAfter !== undefined) result.retryAfter = retryAfter;
  return result;
}

function severity(status: number): number {
  if (status === 503) return 4;
  if (status >= 500) return 3;
  if (status >= 400) return 2;
  return 1;
}

/** The declared content-length, when there is a valid one. */
function declaredLength(headers: Headers): number | undefined {
  const value = singleHeader(headers, 'content-length');
  if (value === undefined || !/^\d{1,15}$/.test(value)) return undefined;
  return Number(value);
}

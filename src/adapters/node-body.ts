import type { IncomingMessage } from 'node:http';
import getRawBody from 'raw-body';
import type { BodyReadFailure, Receiver, ReceiverResponse } from '../receive/receiver.js';
import type { BudgetClaim } from '../receive/unverified-budget.js';

/** Where the raw bytes are, when a framework's body parser ran first. */
export interface RawBodySource {
  /** Bytes a parser kept (express.raw, express.text, `req.rawBody`, koa's `ctx.request.rawBody`). */
  captured?: Buffer | undefined;
  /** The stream was read by someone else and the bytes were not kept. */
  consumed: boolean;
  /** Name of the middleware, for the configuration message. */
  middleware: string;
  /** How to keep the raw bytes with this framework's parser. */
  hint: string;
}

/**
 * Reads the raw body (or takes the captured one) and hands it to the receiver. Before reading a
 * byte it refuses what the headers alone can refuse; while reading it holds a share of the
 * receiver's unauthenticated-bytes budget and a deadline. Refusals made before the whole body
 * was read close the connection, so the rest of the body is never drained.
 */
export async function receiveFromNode(
  receiver: Receiver,
  req: IncomingMessage,
  limit: number,
  source: RawBodySource,
): Promise<ReceiverResponse & { closeConnection?: boolean }> {
  if (source.captured) return receiver.handle({ headers: req.headers, body: source.captured });
  // Headers first: an unsigned request is refused (401) before anyone is told about the middleware order.
  const refusal = receiver.preflight(req.headers);
  if (refusal) return { ...refusal, closeConnection: !source.consumed };
  if (source.consumed) return receiver.rawBodyUnavailable(source.middleware, source.hint);
  const claim = receiver.claimUnverified();
  try {
    const read = await readBody(req, { limitBytes: limit, ...receiver.bodyTimeouts, claim });
    if (!Buffer.isBuffer(read)) return { ...receiver.readFailed(read), closeConnection: true };
    return await receiver.handle({ headers: req.headers, body: read }, claim.release);
  } finally {
    claim.release();
  }
}

export interface ReadBodyOptions {
  limitBytes: number;
  timeoutMs: number;
  /** No byte by then: 408. Still reading then: the claim is slow (it may hold only the slow share). */
  startTimeoutMs: number;
  /** Grown as bytes arrive. */
  claim: BudgetClaim;
}

/**
 * The request's bytes (read by `raw-body`, which enforces the limit and the declared length),
 * or why reading stopped: over the limit, no byte before the start deadline, past the deadline,
 * over the budget, aborted.
 */
export function readBody(req: IncomingMessage, { limitBytes, timeoutMs, startTimeoutMs, claim }: ReadBodyOptions): Promise<Buffer | BodyReadFailure> {
  return new Promise((resolve) => {
    let settled = false;
    let received = 0;
    const finish = (result: Buffer | BodyReadFailure) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(startTimer);
      req.off('data', onData);
      resolve(result);
    };
    // raw-body has no deadline and no per-chunk hook: both are kept here, beside it.
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    const startTimer = setTimeout(() => {
      if (received === 0) finish('idle');
      else if (!claim.markSlow()) finish('busy');
    }, startTimeoutMs);
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (!claim.growTo(Math.min(received, limitBytes))) finish('busy');
    };
    const length = req.headers['content-length'];
    getRawBody(req, { limit: limitBytes, length: length === undefined ? null : length }).then(
      (body) => finish(body),
      (error: { type?: string }) => finish(READ_FAILURES[error.type ?? ''] ?? 'aborted'),
    );
    req.on('data', onData);
  });
}

const READ_FAILURES: Record<string, BodyReadFailure> = {
  'entity.too.large': 'too-large',
  'request.size.invalid': 'size-mismatch',
  'request.aborted': 'aborted',
};

/** `Buffer` for bytes a parser kept as a Buffer or a string; undefined otherwise. */
export function asBuffer(value: unknown): Buffer | undefined {
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  return undefined;
}

/** The path of a request URL, without the query. */
export function pathOf(url: string | undefined): string {
  if (!url) return '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

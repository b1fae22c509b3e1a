import type { IncomingMessage } from 'node:http';
import getRawBody from 'raw-body';
import type { BodyReadFailure, Receiver } from '../receive/receiver.js';
import { type IntakeResponse, type RawBodySource, type ReadBodyOptions, receiveBody } from './intake.js';

/** The events intake for a node request: its bytes read by `readBody` (see receiveBody). */
export function receiveFromNode(receiver: Receiver, req: IncomingMessage, limit: number, source: RawBodySource): Promise<IntakeResponse> {
  return receiveBody(receiver, req.headers, limit, (options) => readBody(req, options), source);
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

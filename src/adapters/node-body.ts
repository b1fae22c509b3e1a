import type { IncomingMessage } from 'node:http';
import { ProtocolError } from '../protocol/protocol-error.js';
import type { Receiver, ReceiverResponse } from '../receive/receiver.js';

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

/** Reads the raw body (or takes the captured one) and hands it to the receiver. */
export async function receiveFromNode(
  receiver: Receiver,
  req: IncomingMessage,
  limit: number,
  source: RawBodySource,
): Promise<ReceiverResponse & { closeConnection?: boolean }> {
  if (source.captured) return receiver.handle({ headers: req.headers, body: source.captured });
  if (source.consumed) {
    const error = new ProtocolError(
      500,
      'raw_body_unavailable',
      `${source.middleware}: a body parser mounted before it already read this request and did not keep the raw bytes, ` +
        `so the signature cannot be checked. Mount ${source.middleware} before the body parser, or ${source.hint}.`,
    );
    return { status: error.status, headers: {}, body: { error: error.code, message: error.message } };
  }
  const body = await readBody(req, limit);
  if (body === undefined) return { ...receiver.tooLarge(), closeConnection: true };
  return receiver.handle({ headers: req.headers, body });
}

/** The request's bytes, or undefined as soon as they exceed `limit`. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.resume();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

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

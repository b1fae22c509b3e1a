import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com): pure functions, no I/O.
 * `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<raw body>")>`, several per header, space-separated.
 */

const SECRET_PREFIX = 'whsec_';
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A secret in `whsec_<base64>` form that is not usable. The message never contains the secret. */
export class SecretFormatError extends Error {
  override name = 'SecretFormatError';
}

/** Decodes a `whsec_…` secret into its HMAC key. Throws SecretFormatError without echoing the value. */
export function parseSecret(secret: string): Buffer {
  if (typeof secret !== 'string' || !secret.startsWith(SECRET_PREFIX)) {
    throw new SecretFormatError('a secret must look like "whsec_" followed by base64');
  }
  const encoded = secret.slice(SECRET_PREFIX.length);
  if (encoded.length === 0 || !BASE64.test(encoded)) {
    throw new SecretFormatError('the part after "whsec_" is not valid base64');
  }
  return Buffer.from(encoded, 'base64');
}

/** The signature of one message under one key, as `v1,<base64>`. */
export function sign(key: Buffer, id: string, timestamp: number, body: string | Buffer): string {
  const hmac = createHmac('sha256', key);
  hmac.update(`${id}.${timestamp}.`);
  hmac.update(body);
  return `v1,${hmac.digest('base64')}`;
}

/** The `webhook-signature` header value: one signature per key, so receivers holding either secret accept it during a rotation. */
export function signatureHeader(keys: readonly Buffer[], id: string, timestamp: number, body: string | Buffer): string {
  return keys.map((key) => sign(key, id, timestamp, body)).join(' ');
}

/** The three Standard Webhooks headers of one message `id`, signed at `timestamp` (seconds) over `body`. */
export function webhookHeaders(
  keys: readonly Buffer[],
  id: string,
  timestamp: number,
  body: string | Buffer,
): { 'webhook-id': string; 'webhook-timestamp': string; 'webhook-signature': string } {
  return { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': signatureHeader(keys, id, timestamp, body) };
}

export type VerifyFailure =
  | 'missing-headers'
  | 'bad-timestamp'
  | 'timestamp-too-old'
  | 'timestamp-too-new'
  | 'no-matching-signature';

export interface VerifyInput {
  id: string | undefined;
  timestamp: string | undefined;
  signature: string | undefined;
  body: Buffer;
}

/**
 * What the headers alone can refuse, before any body byte is read: a missing header, a malformed
 * timestamp, or one outside the window. Returns undefined when the body is worth reading.
 */
export function checkSignatureHeaders(
  input: Omit<VerifyInput, 'body'>,
  toleranceSeconds: number,
  nowSeconds = Math.floor(Date.now() / 1000),
): VerifyFailure | undefined {
  const { id, timestamp, signature } = input;
  if (!id || !timestamp || !signature) return 'missing-headers';
  if (!/^\d{1,15}$/.test(timestamp)) return 'bad-timestamp';
  const ts = Number(timestamp);
  if (nowSeconds - ts > toleranceSeconds) return 'timestamp-too-old';
  if (ts - nowSeconds > toleranceSeconds) return 'timestamp-too-new';
  return undefined;
}

/**
 * Checks a request against every key: any `v1` signature matching any key passes. Comparison is
 * constant-time per candidate. Returns undefined on success, or why it failed.
 */
export function verify(
  keys: readonly Buffer[],
  input: VerifyInput,
  toleranceSeconds: number,
  nowSeconds = Math.floor(Date.now() / 1000),
): VerifyFailure | undefined {
  const early = checkSignatureHeaders(input, toleranceSeconds, nowSeconds);
  if (early) return early;
  // checkSignatureHeaders made sure all three are present.
  const id = input.id as string;
  const signature = input.signature as string;
  const { body } = input;
  const ts = Number(input.timestamp);

  const candidates: Buffer[] = [];
  for (const part of signature.split(' ')) {
    const comma = part.indexOf(',');
    if (comma < 0 || part.slice(0, comma) !== 'v1') continue;
    candidates.push(Buffer.from(part.slice(comma + 1), 'base64'));
  }
  let matched = false;
  for (const key of keys) {
    const expected = Buffer.from(sign(key, id, ts, body).slice(3), 'base64');
    for (const candidate of candidates) {
      // Lengths are public (always 32 for SHA-256); only equal-length buffers are compared in constant time.
      if (candidate.length === expected.length && timingSafeEqual(candidate, expected)) matched = true;
    }
  }
  return matched ? undefined : 'no-matching-signature';
}

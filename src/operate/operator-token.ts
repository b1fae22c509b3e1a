import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Operators by name, each with its token (`console: { token }` is the one named `operator`): what
 * `Authorization: Bearer <token>` is checked against by the health endpoint's details (and the console).
 */
export type OperatorTokens = Readonly<Record<string, string>>;

/** A key of this process only: both sides are compared as HMACs of the same length, so nothing leaks a token's length. */
const KEY = randomBytes(32);
const mac = (text: string): Buffer => createHmac('sha256', KEY).update(text).digest();

/**
 * The name of the operator whose token an `Authorization` header value (`Bearer <token>`) carries;
 * undefined for none, another scheme or a wrong token. Every token is compared, in constant time.
 */
export function operatorOf(tokens: OperatorTokens, authorization: string | undefined): string | undefined {
  const given = /^Bearer +(\S+) *$/i.exec(authorization ?? '')?.[1];
  if (given === undefined) return undefined;
  const digest = mac(given);
  let name: string | undefined;
  for (const [operator, token] of Object.entries(tokens)) {
    if (timingSafeEqual(digest, mac(token))) name ??= operator;
  }
  return name;
}

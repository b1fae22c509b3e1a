import { createHmac, timingSafeEqual } from 'node:crypto';
import { DEFAULTS } from '../defaults.js';
import type { OperatorTokens } from '../operate/operator-token.js';

/**
 * The console's session: a cookie `<operator>.<issuedAt>.<mac>`, the MAC an HMAC-SHA256 keyed by
 * that operator's token. It holds on every instance that has the token (nothing is kept in a
 * process) and dies when the token changes, or after `DEFAULTS.console.sessionTtlMs`. Its CSRF
 * token is an HMAC of the cookie value under the same key.
 */

export const SESSION_COOKIE = 'events_console';

const mac = (key: string, text: string): string => createHmac('sha256', key).update(text).digest('base64url');

/** The cookie value of a session opened for `operator` at `now`. */
export function sessionValue(tokens: OperatorTokens, operator: string, now: number): string {
  const head = `${encodeURIComponent(operator).replace(/\./g, '%2E')}.${now}`;
  return `${head}.${mac(tokens[operator]!, head)}`;
}

/** The operator of a cookie value whose MAC holds under that operator's current token and which has not expired; else undefined. */
export function sessionOperator(tokens: OperatorTokens, value: string | undefined, now: number): string | undefined {
  const match = /^([^.]{1,300})\.(\d{1,15})\.([\w-]{43})$/.exec(value ?? '');
  if (!match) return undefined;
  let operator: string;
  try {
    operator = decodeURIComponent(match[1]!);
  } catch {
    return undefined;
  }
  if (!Object.hasOwn(tokens, operator)) return undefined;
  if (!timingSafeEqual(Buffer.from(mac(tokens[operator]!, `${match[1]}.${match[2]}`)), Buffer.from(match[3]!))) return undefined;
  const age = now - Number(match[2]);
  return age <= DEFAULTS.console.sessionTtlMs && age > -60_000 ? operator : undefined;
}

/** The CSRF token of a session (the page sends it back in `x-csrf-token`). */
export function csrfOf(tokens: OperatorTokens, operator: string, value: string): string {
  return mac(tokens[operator]!, `csrf:${value}`);
}

/** Whether `given` is the session's CSRF token, compared in constant time. */
export function csrfHolds(tokens: OperatorTokens, operator: string, value: string, given: string | undefined): boolean {
  const expected = Buffer.from(csrfOf(tokens, operator, value));
  const actual = Buffer.from(given ?? '');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** The session cookie's value in a `Cookie` header. */
export function cookieOf(header: string | string[] | undefined): string | undefined {
  for (const part of String(header ?? '').split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === SESSION_COOKIE) return value.join('=');
  }
  return undefined;
}

/** A `Set-Cookie` value: the session (HttpOnly, SameSite=Strict, scoped to the console, Secure over https), or its removal. */
export function setCookie(path: string, value: string | undefined, secure: boolean): string {
  const age = value === undefined ? 0 : Math.floor(DEFAULTS.console.sessionTtlMs / 1000);
  return `${SESSION_COOKIE}=${value ?? ''}; HttpOnly; SameSite=Strict; Path=${path}; Max-Age=${age}${secure ? '; Secure' : ''}`;
}

/**
 * Failed sign-ins slowed down per client address: after `failuresAllowed` failures within
 * `failureWindowMs`, the address waits `slowDownMs` before its next try, doubling with each
 * failure after that; a success forgets it. At most `maxTrackedAddresses` are remembered.
 */
export class SignInThrottle {
  private readonly byAddress = new Map<string, { failures: number[]; until: number; delayMs: number }>();

  /** How long `address` must wait before it may try again, in ms (0: it may now). */
  waitMs(address: string, now: number): number {
    return Math.max(0, (this.byAddress.get(address)?.until ?? 0) - now);
  }

  failed(address: string, now: number): void {
    const c = DEFAULTS.console;
    const state = this.byAddress.get(address) ?? { failures: [], until: 0, delayMs: 0 };
    this.byAddress.delete(address); // re-inserted last: the map's order is the order of last failure
    if (this.byAddress.size >= c.maxTrackedAddresses) this.byAddress.delete(this.byAddress.keys().next().value!);
    state.failures = state.failures.filter((at) => now - at < c.failureWindowMs);
    state.failures.push(now);
    if (state.failures.length >= c.failuresAllowed) {
      state.delayMs = state.delayMs === 0 ? c.slowDownMs : Math.min(state.delayMs * 2, c.maxSlowDownMs);
      state.until = now + state.delayMs;
    } else {
      state.delayMs = 0;
    }
    this.byAddress.set(address, state);
  }

  succeeded(address: string): void {
    this.byAddress.delete(address);
  }
}

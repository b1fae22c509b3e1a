import type { Logger } from 'winston';
import { routeErrorResponse, type RouteRequest, type RouteResponse, type RouteTable } from '../adapters/routes.js';
import { DEFAULTS } from '../defaults.js';
import { operatorOf, type OperatorTokens } from '../operate/operator-token.js';
import type { DeadLetter, DeadLetterFilter, DeadLetterOperator, DeadLetterSelection } from '../operate/operator.js';
import { parseJson } from '../protocol/safe-json.js';
import type { ConsoleOverview } from './overview.js';
import { cookieOf, csrfHolds, csrfOf, sessionOperator, sessionValue, setCookie, SignInThrottle } from './session.js';
import { CONSOLE_CSS, CONSOLE_HTML, CONSOLE_JS } from './ui/index.js';

/** What a console serves: operators and their tokens, fields to mask, and where its figures and dead letters come from. */
export interface ConsoleSetup {
  tokens: OperatorTokens;
  /** Payload fields masked at any depth (`console.redact`). */
  redact: readonly string[];
  logger: Logger;
  overview(): Promise<ConsoleOverview>;
  /** The operator of the dead letters (the bus's changes once it consumes from a broker). */
  operator(): DeadLetterOperator;
}

/** Every console answer carries these. */
const HEADERS = {
  'content-security-policy': "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
};

const STATIC: Record<string, [type: string, text: string]> = {
  '/console': ['text/html; charset=utf-8', CONSOLE_HTML],
  '/console/app.js': ['text/javascript; charset=utf-8', CONSOLE_JS],
  '/console/app.css': ['text/css; charset=utf-8', CONSOLE_CSS],
};

const MASK = '•••';

type Answer = RouteResponse;
const json = (status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): Answer => ({ status, headers: { ...HEADERS, ...headers }, body });
const refuse = (status: number, error: string, message: string, headers?: Record<string, string>) => json(status, { error, message }, headers);

/**
 * The console at `<path>/console`: the page, its script and style, and the JSON API under
 * `<path>/console/api/` (sign-in and session, overview, dead letters, replay, discard), added to
 * the route table every adapter answers from. Without operator tokens every console path is 404.
 */
export function addConsoleRoutes(routes: RouteTable, setup: ConsoleSetup | undefined): void {
  const answer = setup ? consoleAnswers(setup) : async () => refuse(404, 'not_found', 'the console is off: it needs an operator token (console.token or EVENTS_CONSOLE_TOKEN)');
  for (const method of ['GET', 'POST', 'DELETE']) routes.add(method, '/console', answer, { below: true });
}

function consoleAnswers(setup: ConsoleSetup): (request: RouteRequest) => Promise<Answer> {
  const { tokens, logger } = setup;
  const throttle = new SignInThrottle();
  const redact = new Set(setup.redact);

  const tooMany = (waitMs: number) =>
    refuse(429, 'too_many_attempts', 'too many failed sign-ins from this address: wait before trying again', { 'retry-after': String(Math.ceil(waitMs / 1000)) });
  const unauthorized = (message: string) => refuse(401, 'unauthorized', message);

  /** The operator of a request: by `Authorization: Bearer`, or by the session cookie (with the CSRF check on a state change). */
  const authenticate = (request: RouteRequest, now: number): { operator: string; value?: string } | Answer => {
    const address = request.remoteAddress ?? 'unknown';
    const { authorization } = request.headers;
    if (authorization !== undefined) {
      const wait = throttle.waitMs(address, now);
      if (wait > 0) return tooMany(wait);
      const operator = operatorOf(tokens, String(authorization));
      if (operator === undefined) {
        throttle.failed(address, now);
        return unauthorized('wrong operator token');
      }
      throttle.succeeded(address);
      return { operator };
    }
    const value = cookieOf(request.headers.cookie);
    const operator = sessionOperator(tokens, value, now);
    if (operator === undefined) return unauthorized('sign in with the operator token, or send Authorization: Bearer <token>');
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      if (!sameOrigin(request) || !csrfHolds(tokens, operator, value!, header(request, 'x-csrf-token'))) {
        return refuse(403, 'csrf_failed', 'a state change needs the x-csrf-token of this session and an Origin of this host');
      }
    }
    return { operator, value: value! };
  };

  const session = async (request: RouteRequest, now: number): Promise<Answer> => {
    const path = `${request.base}/console`;
    const secure = request.secure || /^https\b/i.test(header(request, 'x-forwarded-proto') ?? '');
    if (request.method === 'POST') {
      const address = request.remoteAddress ?? 'unknown';
      const wait = throttle.waitMs(address, now);
      if (wait > 0) return tooMany(wait);
      if (request.headers.origin !== undefined && !sameOrigin(request)) return refuse(403, 'csrf_failed', 'sign in from this host');
      const body = await request.json();
      const token = typeof body === 'object' && body !== null ? (body as { token?: unknown }).token : undefined;
      const operator = typeof token === 'string' && /^\S+$/.test(token) ? operatorOf(tokens, `Bearer ${token}`) : undefined;
      if (operator === undefined) {
        throttle.failed(address, now);
        logger.warn('console sign-in refused', { address });
        return unauthorized('wrong operator token');
      }
      throttle.succeeded(address);
      const value = sessionValue(tokens, operator, now);
      logger.info('console sign-in', { operator, address });
      return json(200, { operator, csrf: csrfOf(tokens, operator, value) }, { 'set-cookie': setCookie(path, value, secure) });
    }
    const who = authenticate(request, now);
    if (request.method === 'DELETE') {
      if ('status' in who && who.status !== 401) return who;
      return { status: 204, headers: { ...HEADERS, 'set-cookie': setCookie(path, undefined, secure) }, body: '' };
    }
    if ('status' in who) return who;
    if (who.value === undefined) return unauthorized('no session: sign in with the operator token');
    return json(200, { operator: who.operator, csrf: csrfOf(tokens, who.operator, who.value) });
  };

  const act = async (request: RouteRequest, operator: string, action: 'replay' | 'discard'): Promise<Answer> => {
    const chosen = selectionOf(await request.json());
    if (typeof chosen === 'string') return refuse(400, 'invalid_selection', chosen);
    const { selection } = chosen;
    const count = await setup.operator()[action](selection);
    const done = action === 'replay' ? 'replayed' : 'discarded';
    logger.info(`console: dead letters ${done}`, { operator, selection, count });
    return json(200, { [done]: count });
  };

  const api = async (request: RouteRequest, operator: string, route: string): Promise<Answer> => {
    if (route === '/overview' && request.method === 'GET') return json(200, { ...(await setup.overview()) });
    if (route === '/dead-letters' && request.method === 'GET') {
      const query = queryOf(request.query);
      if (typeof query === 'string') return refuse(400, 'invalid_query', query);
      const page = await setup.operator().deadLetterPage(query.filter, query.page);
      return json(200, { items: page.items.map(itemOf), ...(page.next !== undefined ? { next: page.next } : {}), ...(page.truncated ? { truncated: true } : {}) });
    }
    if (route.startsWith('/dead-letters/') && request.method === 'GET') {
      let id: string;
      try {
        id = decodeURIComponent(route.slice('/dead-letters/'.length));
      } catch {
        return refuse(400, 'invalid_query', 'the dead-letter id is not a valid URL component');
      }
      const [letter] = await setup.operator().deadLetters({ ids: [id] });
      if (!letter) return refuse(404, 'not_found', 'no dead letter with this id (replayed or discarded already?)');
      return json(200, { ...itemOf(letter), payload: payloadOf(letter.body, redact) });
    }
    if ((route === '/replay' || route === '/discard') && request.method === 'POST') return act(request, operator, route === '/replay' ? 'replay' : 'discard');
    return refuse(404, 'not_found', `no console API at ${request.method} ${request.path}`);
  };

  return async (request) => {
    const now = Date.now();
    const page = STATIC[request.path];
    if (page && request.method !== 'POST' && request.method !== 'DELETE') {
      return { status: 200, headers: { ...HEADERS, 'content-type': page[0] }, body: page[1] };
    }
    if (!request.path.startsWith('/console/api/')) return refuse(404, 'not_found', `nothing at ${request.path}`);
    const route = request.path.slice('/console/api'.length);
    try {
      if (route === '/session') return await session(request, now);
      const who = authenticate(request, now);
      if ('status' in who) return who;
      return await api(request, who.operator, route);
    } catch (error) {
      const refused = routeErrorResponse(error); // a body refused (malformed, too large)
      if (refused) return { ...refused, headers: { ...HEADERS, ...refused.headers } };
      logger.error('console request failed', { path: request.path, error: (error as Error)?.message ?? String(error) });
      return refuse(503, 'unavailable', `the store did not answer: ${(error as Error)?.message ?? String(error)}`);
    }
  };
}

function header(request: RouteRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The request's `Origin` (else `Referer`) names the host it was sent to. */
function sameOrigin(request: RouteRequest): boolean {
  const from = header(request, 'origin') || header(request, 'referer');
  const host = header(request, 'host');
  if (from === undefined || host === undefined) return false;
  try {
    return new URL(from).host === host;
  } catch {
    return false;
  }
}

/** A dead letter as the console lists it. */
function itemOf(letter: DeadLetter) {
  const time = letter.deadAt ?? letter.createdAt;
  return {
    id: letter.id,
    eventId: letter.eventId ?? null,
    type: letter.type ?? null,
    target: letter.target,
    reason: letter.reason,
    attempts: letter.attempts ?? null,
    lastStatus: letter.status ?? null,
    error: letter.error ?? null,
    time: time === undefined ? null : new Date(time).toISOString(),
  };
}

/** The event's data (else the whole body), its `redact` fields masked at any depth. */
function payloadOf(body: string, redact: ReadonlySet<string>): unknown {
  let event: unknown;
  try {
    event = parseJson(body, 'the dead letter');
  } catch {
    return redact.size === 0 ? body : MASK; // not JSON: nothing to mask in it field by field
  }
  const data = event !== null && typeof event === 'object' && 'data' in event ? (event as { data: unknown }).data : event;
  const mask = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(mask);
    if (value === null || typeof value !== 'object') return value;
    return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, redact.has(key) ? MASK : mask(v)]));
  };
  return mask(data);
}

/** A name or id from a query or body: 1 to 300 characters, no control characters. */
// eslint-disable-next-line no-control-regex
const TEXT = /^[^\u0000-\u001f]{1,300}$/;

/** The filters and page of `GET …/dead-letters`, or what is wrong with them. */
function queryOf(query: URLSearchParams): { filter: DeadLetterFilter; page: { limit: number; cursor?: string } } | string {
  const filter: DeadLetterFilter = {};
  for (const key of ['target', 'type'] as const) {
    const value = query.get(key);
    if (value === null || value === '') continue;
    if (!TEXT.test(value)) return `${key} must be 1 to 300 characters`;
    filter[key] = value;
  }
  for (const key of ['since', 'until'] as const) {
    const value = query.get(key);
    if (value === null || value === '') continue;
    const time = /^\d{1,15}$/.test(value) ? Number(value) : Date.parse(value);
    if (Number.isNaN(time)) return `${key} must be an ISO time or ms since epoch`;
    filter[key] = time;
  }
  const { pageSize, maxPageSize } = DEFAULTS.console;
  const limit = query.get('limit') ? Number(query.get('limit')) : pageSize;
  if (!Number.isInteger(limit) || limit < 1 || limit > maxPageSize) return `limit must be a whole number from 1 to ${maxPageSize}`;
  const cursor = query.get('cursor') || undefined;
  if (cursor !== undefined && !/^[\x21-\x7e]{1,600}$/.test(cursor)) return 'cursor must be a page\'s "next" as given';
  return { filter, page: { limit, ...(cursor !== undefined ? { cursor } : {}) } };
}

/** `{ ids }`, `{ filter: { target?, type? } }` or `{ all: true }` as a selection, or what is wrong with it. */
function selectionOf(body: unknown): { selection: DeadLetterSelection } | string {
  const given = (body ?? {}) as { ids?: unknown; filter?: unknown; all?: unknown };
  const kinds = ['ids', 'filter', 'all'].filter((key) => typeof body === 'object' && body !== null && key in body);
  if (kinds.length !== 1) return 'send one of { "ids": [...] }, { "filter": { "target": …, "type": … } } or { "all": true }';
  if (kinds[0] === 'all') return given.all === true ? { selection: 'all' } : '"all" must be true';
  if (kinds[0] === 'ids') {
    const ids = given.ids;
    const ok = Array.isArray(ids) && ids.length > 0 && ids.length <= 1000 && ids.every((id) => (typeof id === 'string' && TEXT.test(id)) || Number.isSafeInteger(id));
    return ok ? { selection: ids as (string | number)[] } : '"ids" must be 1 to 1000 dead-letter ids as listed';
  }
  const filter = given.filter as Record<string, unknown> | null;
  if (filter === null || typeof filter !== 'object' || Array.isArray(filter)) return '"filter" must be an object';
  const keys = Object.keys(filter);
  if (keys.length === 0 || keys.some((key) => (key !== 'target' && key !== 'type') || typeof filter[key] !== 'string' || !TEXT.test(filter[key] as string))) {
    return '"filter" takes "target" and/or "type", each a non-empty string (for every dead letter, send { "all": true })';
  }
  return { selection: { ...(filter as { target?: string; type?: string }) } };
}

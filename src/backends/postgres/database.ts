import { setTimeout as sleep } from 'node:timers/promises';
import type * as Pg from 'pg';
import type { Notification, Pool, PoolClient } from 'pg';
import type { Logger } from 'winston';
import type { ResolvedConfig } from '../../config.js';
import { DEFAULTS } from '../../defaults.js';
import { loadPeer } from '../../optional-peer.js';
import type { DatabasePool } from '../../types.js';
import { AvailabilityState } from '../../observe/availability.js';
import { observedPool } from './observed-pool.js';
import { type Queryable, runStatement } from './prepared.js';
import { quoteSchema, SCHEMA_VERSION, schemaVersion, upgradeSchema } from './schema.js';

// `pg` is an optional peer dependency, loaded only here, when a store opens.

export type PgModule = typeof Pg;

export function loadPg(): PgModule {
  const message = 'EVENTS_DATABASE_URL (or the database option) is set, but the optional peer dependency pg is not installed: run npm install pg@^8';
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return loadPeer(() => require('pg'), 'EVENTS_DATABASE_URL', message);
}

export interface DatabaseOptions {
  /** @default DEFAULTS.database.schema */
  schema?: string;
  /** Connections of the pool opened from a URL (your pool keeps its own). @default DEFAULTS.database.poolSize */
  poolSize?: number;
  /** In `pg_stat_activity`, for the connections opened from a URL (the URL's own `application_name` wins). */
  applicationName?: string;
  /** The stores' frequent statements as named prepared statements (prepared.ts). @default DEFAULTS.database.preparedStatements */
  preparedStatements?: boolean;
  logger?: Logger;
}

/** The LISTEN connection and how to let it go (`broken`: destroy it). */
interface Listener {
  client: Pg.ClientBase;
  close(broken: boolean): Promise<void>;
}

/**
 * One PostgreSQL database as a bus uses it; its outbox and inbox share it.
 *
 * - One pool: yours as is (never ended here), or one of `poolSize` connections opened from a URL,
 *   ended when the last store using it closes.
 * - One LISTEN connection beside the pool, configured as its connections, opened again after a loss;
 *   it also sends the NOTIFYs of emits (`notify`) and the outbox's short control statements.
 * - The schema set up once (created or upgraded to SCHEMA_VERSION) under one advisory lock.
 * - A client taken for a transaction listens for `'error'` (a connection lost while it is held
 *   never crashes the process) and is always released, destroyed when its state is unknown.
 * - Handler transactions hold at most the pool's size minus one connection: the outbox's own
 *   writes, an emit without `tx` inside a handler, claims and reads always find a connection.
 *   Nothing else holds a connection while it waits for another.
 */
export class PostgresDatabase {
  readonly pool: Pool;
  /** Whether calls reach the database (health's `database`). */
  readonly availability = new AvailabilityState();
  readonly schema: string;
  /** The schema, quoted for SQL. */
  readonly s: string;
  /** Where it points, for messages (no password). */
  readonly where: string;
  /** Whether `run` prepares its statements. */
  private readonly prepare: boolean;
  private readonly owned: boolean;
  /** The pool's connection settings, for the LISTEN client (none: a pool that is not a `pg.Pool` lends it one). */
  private readonly settings: Pg.PoolConfig | undefined;
  private readonly logger: Logger | undefined;
  /** The connections close destroys at its deadline: every one of a pool opened here, and the LISTEN client. */
  private readonly open = new Set<Pg.ClientBase>();
  private closeTimer: NodeJS.Timeout | undefined;
  /** Resolves when close gave up waiting (its deadline passed and what was open is destroyed). */
  private readonly late: Promise<void>;
  private gaveUp = () => {};
  private users = 0;
  private ending: Promise<void> | undefined;
  private poolEnd: Promise<void> | undefined;
  private setup: Promise<void> | undefined;
  /** Handler transactions: at most `slots` at once, the others wait their turn (holding nothing). */
  readonly slots: number;
  private inFlight = 0;
  private readonly queued: Array<() => void> = [];
  private readonly channels = new Map<string, (payload: string) => void>();
  private listener: Listener | undefined;
  private listening: Promise<void> | undefined;
  private listenRetry: NodeJS.Timeout | undefined;
  /** What `notify` sends with its next statement: payloads by channel. */
  private readonly notices = new Map<string, Set<string>>();
  private notifying = false;
  /** When the last NOTIFY statement went (the next waits `DEFAULTS.database.notifyGapMs` after it). */
  private noticeSentAt = -Infinity;

  constructor(database: string | DatabasePool | Pool, options: DatabaseOptions = {}) {
    this.schema = options.schema ?? DEFAULTS.database.schema;
    this.s = quoteSchema(this.schema);
    this.owned = typeof database === 'string';
    this.prepare = options.preparedStatements ?? DEFAULTS.database.preparedStatements;
    this.where = typeof database === 'string' ? redact(database) : 'your pg.Pool';
    this.logger = options.logger;
    this.late = new Promise((resolve) => (this.gaveUp = resolve));
    if (typeof database === 'string') {
      const application_name = options.applicationName ?? 'events-library';
      const { poolSize, connectTimeoutMs, statementTimeoutMs, queryTimeoutMs } = DEFAULTS.database;
      this.pool = new (loadPg().Pool)({
        connectionString: database,
        application_name,
        max: options.poolSize ?? poolSize,
        connectionTimeoutMillis: connectTimeoutMs,
        statement_timeout: statementTimeoutMs,
        query_timeout: queryTimeoutMs,
      });
      // An idle connection that breaks (a server restart) is dropped by the pool, never thrown into the process.
      this.pool.on('error', (error) =>
        options.logger?.warn('an idle PostgreSQL connection failed; the pool opens another', { error: error.message, code: codeOf(error) }),
      );
      // A connection given back with its statement unanswered is destroyed by the pool, never handed out again.
      this.pool.on('release', (error) => {
        if (unanswered(error)) this.logger?.warn('a PostgreSQL connection did not answer in time; destroyed, the pool opens another', { database: this.where });
      });
      this.pool.on('connect', (client) => this.open.add(client));
      this.pool.on('remove', (client) => this.open.delete(client));
    } else this.pool = database as Pool;
    // Health: every call through the pool marks the database up, or down since its first failure.
    this.pool = observedPool(this.pool, this.availability, isUnavailable);
    this.settings = (this.pool as { options?: Pg.PoolConfig }).options;
    const size = this.settings?.max ?? DEFAULTS.database.poolSize;
    this.slots = Math.max(1, size - (this.settings ? 1 : 2));
  }

  /**
   * One of the stores' frequent statements, on the pool or on a client taken from it, prepared
   * (prepared.ts) unless prepared statements are off. `inTransaction`: a stale plan is not run again.
   */
  run<R extends Pg.QueryResultRow>(text: string, values: unknown[], on: Queryable = this.pool as Queryable, inTransaction = false): Promise<Pg.QueryResult<R>> {
    return runStatement<R>(on, text, values, this.prepare, inTransaction);
  }

  /** A store starts using this database: it calls `release()` when it closes. */
  use(): this {
    this.users += 1;
    return this;
  }

  /**
   * A store is done with it: the last one stops LISTEN and ends a pool opened here. Resolves by
   * the deadline given to `closeBy`, whatever the database does.
   */
  release(): Promise<void> {
    this.users -= 1;
    if (this.users > 0) return Promise.resolve();
    this.ending ??= (async () => {
      clearTimeout(this.listenRetry);
      const listener = this.listener;
      this.listener = undefined;
      await listener?.close(false).catch(() => {}); // one still connecting closes itself once connected
      if (this.owned) await this.endPool();
      clearTimeout(this.closeTimer);
    })();
    return Promise.race([this.ending, this.late]);
  }

  /**
   * The stores close by `by` (ms since epoch): what is still open then (connections stuck on a
   * database that does not answer) is destroyed, a pool opened here takes no new call, and
   * `release` resolves.
   */
  closeBy(by: number | undefined): void {
    if (by === undefined || this.closeTimer !== undefined) return;
    this.closeTimer = setTimeout(() => {
      if (this.owned) void this.endPool();
      if (this.open.size > 0) {
        this.logger?.warn('PostgreSQL connections still busy at the shutdown deadline; destroyed', { database: this.where, connections: this.open.size });
      }
      for (const client of this.open) (client as Pg.Client).connection.stream.destroy();
      this.gaveUp();
    }, Math.max(0, by - Date.now())).unref();
  }

  private endPool(): Promise<void> {
    this.poolEnd ??= this.pool.end().catch(() => {});
    return this.poolEnd;
  }

  get ended(): boolean {
    return this.ending !== undefined;
  }

  /** The schema is at SCHEMA_VERSION (created or upgraded once; a failure is retried at the next call). */
  ready(): Promise<void> {
    this.setup ??= this.migrate().then(
      () => undefined,
      (error: unknown) => {
        this.setup = undefined;
        throw error;
      },
    );
    return this.setup;
  }

  /** Creates or upgrades the schema; a current one costs one read and takes no lock. */
  async migrate(): Promise<{ from: number; to: number }> {
    const version = await schemaVersion(this.pool, this.s);
    if (version >= SCHEMA_VERSION) return { from: version, to: version };
    return this.transaction((client) => upgradeSchema(client, this.s));
  }

  /**
   * Runs `run` in a transaction on a client of the pool (opened by a BEGIN; with `begin` false,
   * `run`'s first statement opens it, and one that sent none is not committed): committed when `run` resolves,
   * rolled back when anything throws. The client's `'error'` is caught while it is held,
   * and it is always released, destroyed when broken (or when it could not roll back).
   */
  async transaction<T>(run: (client: PoolClient) => Promise<T>, begin = true): Promise<T> {
    let broken: Error | undefined;
    const onError = (error: Error) => (broken ??= error);
    const client = await this.checkout(onError);
    try {
      if (begin) await client.query('BEGIN');
      const value = await run(client);
      if (begin || inTransaction(client)) await client.query('COMMIT');
      return value;
    } catch (error) {
      // Unanswered: a ROLLBACK would wait behind it; the connection is destroyed (which rolls back).
      if (unanswered(error)) broken ??= error as Error;
      else await client.query('ROLLBACK').catch((rollback: unknown) => (broken ??= rollback as Error));
      throw error;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  /**
   * A client of the pool with `onError` listening from the moment the pool hands it over: after an
   * `await pool.connect()` it would listen a turn later, and a connection the server ended in the
   * same read (a FATAL after the previous query's answer) would throw into the process. The caller
   * removes the listener and releases the client.
   */
  checkout(onError: (error: Error) => void): Promise<PoolClient> {
    const listen = (client: PoolClient) => client.on('error', onError);
    if (this.settings === undefined) return this.pool.connect().then(listen);
    return new Promise((resolve, reject) =>
      this.pool.connect((error, client) => (client === undefined ? reject(error) : resolve(listen(client)))),
    );
  }

  /**
   * A transaction that runs handlers: it waits for a free slot first, holding nothing. `run` begins
   * it, with its first statement (`beginWith`: one round trip for both).
   */
  async handlerTransaction<T>(run: (client: PoolClient) => Promise<T>): Promise<T> {
    if (this.inFlight >= this.slots) await new Promise<void>((resolve) => this.queued.push(resolve));
    else this.inFlight += 1;
    try {
      return await this.transaction(run, false);
    } finally {
      const next = this.queued.shift();
      if (next) next();
      else this.inFlight -= 1;
    }
  }

  /**
   * NOTIFY `payload` on `channel` soon, on the LISTEN connection (no pool connection): one statement
   * in flight at a time, at most one every `notifyGapMs`, carrying every payload queued meanwhile, each once. The LISTEN connection
   * passes on no notification it sent itself: the process that asked knows already. While that
   * connection is down (or not open yet) the payloads wait for it, each once: the other instances'
   * poll finds the work meanwhile.
   */
  notify(channel: string, payload: string): void {
    let payloads = this.notices.get(channel);
    if (payloads === undefined) this.notices.set(channel, (payloads = new Set()));
    payloads.add(payload);
    if (!this.notifying) void this.sendNotices();
  }

  private async sendNotices(): Promise<void> {
    this.notifying = true;
    try {
      for (let listener = this.listener; listener !== undefined && this.notices.size > 0; listener = this.listener) {
        const wait = this.noticeSentAt + DEFAULTS.database.notifyGapMs - Date.now();
        if (wait > 0) {
          await sleep(wait);
          continue;
        }
        this.noticeSentAt = Date.now();
        const channels: string[] = [];
        const payloads: string[] = [];
        for (const [channel, queued] of this.notices) {
          for (const payload of queued) {
            channels.push(channel);
            payloads.push(payload);
          }
        }
        this.notices.clear();
        await listener.client
          .query('SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS u(c, p)', [channels, payloads])
          .catch((error: unknown) => refusedByServer(error) || this.lost(listener));
      }
    } finally {
      this.notifying = false;
    }
  }

  /**
   * A short statement that must not wait for a pool connection (the pool may be full of the very
   * connections it is about): on the LISTEN connection when it is up, else through the pool.
   */
  async control<R extends Pg.QueryResultRow>(text: string, values: unknown[]): Promise<Pg.QueryResult<R>> {
    const listener = this.listener;
    if (listener === undefined) return this.pool.query<R>(text, values);
    try {
      return await listener.client.query<R>(text, values);
    } catch (error) {
      if (!refusedByServer(error)) this.lost(listener);
      throw error;
    }
  }

  /** Calls `onPayload` with each NOTIFY on `channel`, from the one LISTEN connection. Returns the unsubscribe. */
  listen(channel: string, onPayload: (payload: string) => void): () => void {
    this.channels.set(channel, onPayload);
    if (this.listener) void this.listener.client.query(`LISTEN ${channel}`).catch(() => this.lost(this.listener));
    else this.listening ??= this.startListening();
    return () => this.channels.delete(channel);
  }

  private async startListening(): Promise<void> {
    let listener: Listener | undefined;
    try {
      listener = await this.openListener();
      const { client } = listener;
      const own = (client as { processID?: number }).processID;
      client.on('notification', (message: Notification) => {
        if (message.processId !== own) this.channels.get(message.channel)?.(message.payload ?? '');
      });
      client.on('error', () => this.lost(listener));
      client.on('end', () => this.lost(listener));
      for (const channel of this.channels.keys()) await client.query(`LISTEN ${channel}`);
      if (this.ended) await listener.close(false).catch(() => {});
      else {
        this.listener = listener;
        if (!this.notifying) void this.sendNotices();
      }
    } catch {
      await listener?.close(true).catch(() => {});
      this.listenLater();
    } finally {
      this.listening = undefined;
    }
  }

  private async openListener(): Promise<Listener> {
    if (this.settings === undefined) {
      const lent = await this.pool.connect();
      return { client: lent, close: async (broken) => lent.release(broken) };
    }
    // A NOTIFY-only transaction writes no WAL, so its commit waits for no flush; this keeps it so.
    const options = [this.settings.options, '-c synchronous_commit=off'].filter(Boolean).join(' ');
    const client = new (loadPg().Client)({ ...this.settings, options });
    client.on('error', () => {}); // a failed connect rejects; once connected, `lost` handles it
    this.open.add(client);
    client.on('end', () => this.open.delete(client));
    await client.connect();
    return { client, close: () => client.end() };
  }

  /** The LISTEN connection was lost: open it again later (the poll delivers meanwhile). */
  private lost(listener: Listener | undefined): void {
    if (listener === undefined || this.listener !== listener) return;
    this.listener = undefined;
    void listener.close(true).catch(() => {});
    this.listenLater();
  }

  private listenLater(): void {
    if (this.ended || this.listenRetry !== undefined) return;
    this.listenRetry = setTimeout(() => {
      this.listenRetry = undefined;
      if (!this.ended) this.listening ??= this.startListening();
    }, DEFAULTS.storeRetry.maxDelayMs).unref();
  }
}

/**
 * The database of the bus configured by `config`: one per configuration, so that its outbox and
 * inbox share one pool, one LISTEN connection and one setup.
 */
export function databaseOf(config: ResolvedConfig): PostgresDatabase {
  let db = shared.get(config);
  if (db === undefined || db.ended) {
    db = new PostgresDatabase(config.database!, {
      schema: config.databaseSchema,
      poolSize: config.databasePoolSize,
      preparedStatements: config.databasePreparedStatements,
      applicationName: config.service === undefined ? undefined : `events-library ${config.service}`.slice(0, 63),
      logger: config.logger,
    });
    shared.set(config, db);
  }
  return db;
}

const shared = new WeakMap<ResolvedConfig, PostgresDatabase>();

/** `database` as given to a store: a handle to share, or a URL or pool to open one of its own from. */
export function databaseFrom(database: string | DatabasePool | PostgresDatabase, options: DatabaseOptions): PostgresDatabase {
  return (database instanceof PostgresDatabase ? database : new PostgresDatabase(database, options)).use();
}

/** A URL without its password, for messages and logs. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'postgres://…';
  }
}

const codeOf = (error: unknown): string => String((error as { code?: unknown })?.code ?? '');

/** `pg`'s `query_timeout`, or a deadline of the caller's (ETIMEDOUT): the statement got no answer in time (its connection is stuck). */
const unanswered = (error: unknown): boolean => (error as Error)?.message === 'Query read timeout' || codeOf(error) === 'ETIMEDOUT';

/**
 * The server answered a statement with an error that rolled it back and left the connection
 * usable: an ERROR (a severity, localized, and a SQLSTATE outside the classes of a connection
 * ended: 08, 57P, XX), rather than a connection lost or ended around it, which may follow a commit.
 */
export function refusedByServer(error: unknown): boolean {
  const { severity, code } = (error ?? {}) as { severity?: unknown; code?: unknown };
  return typeof severity === 'string' && typeof code === 'string' && !/^(08|57P|XX)/.test(code);
}

/** `promise`, or a rejection with `late()` after `ms` (what `promise` does later is ignored). */
export function within<T>(promise: Promise<T>, ms: number, late: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(late()), ms)));
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Whether `client` is in a transaction (begun by a statement of its caller's), as of its last answer; true when `pg` does not tell. */
function inTransaction(client: PoolClient): boolean {
  const status = (client as { getTransactionStatus?: () => string | null }).getTransactionStatus;
  return typeof status !== 'function' || status.call(client) !== 'I';
}

/** Whether `error` means the database cannot be reached or cannot write now (rather than a mistake in a query). */
export function isUnavailable(error: unknown): boolean {
  const code = codeOf(error);
  if (['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'EAI_AGAIN'].includes(code)) return true;
  // 08: connection exceptions; 53: insufficient resources (disk full, too many connections); 57P: shutdown;
  // 25006: read-only; 57014: statement_timeout.
  if (/^(08|53|57P)/.test(code) || code === '25006' || code === '57014') return true;
  const message = (error as Error)?.message ?? '';
  return /Connection terminated|connection timeout|Client has encountered a connection error|Cannot use a pool after calling end|Query read timeout|timeout exceeded when trying to connect/i.test(
    message,
  );
}

/** `events-library migrate --apply`: creates or upgrades the library's tables in `schema` of `database`. */
export async function migrate(database: string | DatabasePool, schema?: string): Promise<{ from: number; to: number; where: string }> {
  const db = new PostgresDatabase(database, { schema, poolSize: 1 }).use();
  try {
    return { ...(await db.migrate()), where: db.where };
  } finally {
    await db.release();
  }
}

import { ConfigError } from '../../errors/index.js';
import type { TransactionClient } from '../../types.js';

// Every table of the library in PostgreSQL, its version, and the one rule for the schema's name.
// No driver here: the configuration checks names with it before anything loads `pg`.

/**
 * The one rule for `databaseSchema`: a plain identifier (letters, digits and `_`, not starting
 * with a digit, at most 63 characters), so that it is the same name quoted or not.
 */
export function checkSchemaName(schema: unknown): string {
  if (typeof schema !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) {
    throw new ConfigError(
      `databaseSchema ${JSON.stringify(schema)} is not a plain PostgreSQL identifier (letters, digits and _, starting with a letter or _, at most 63)`,
      { variable: 'EVENTS_DATABASE_SCHEMA' },
    );
  }
  return schema;
}

/** The schema's name checked and quoted for SQL. */
export const quoteSchema = (schema: unknown): string => `"${checkSchemaName(schema)}"`;

/** The database's clock in ms: leases are measured by it, so instances on hosts with skewed clocks agree. */
export const DB_NOW = '(extract(epoch from clock_timestamp()) * 1000)::bigint';

/** The outbox's NOTIFY channel, payload `<schema>\t<service>\t<target>`: the instances sharing its tables wake each other on it. */
export const OUTBOX_CHANNEL = 'events_outbox';

/** The key of the advisory lock every setup and migration takes (the previous release's outbox took it too). */
export const DDL_LOCK = 7_263_514_001;

/**
 * Each version's statements in schema `s` (quoted), in order: step `i` brings the schema to
 * version `i + 1`. Every statement is idempotent, so the printed script runs on any earlier version.
 * 1: the tables as the previous release (0.1) created them, without a version.
 * 2: the version table (created by every setup), and an index that lists a service's dead letters in order.
 * 3: `events_claim`, a dispatcher's claim in one round trip (see PostgresOutbox.claimWith).
 * 4: `events_claim` also says, when it leased fewer than asked, when the target's next delivery is
 *    due (a lane's claim and its next wake-up in one round trip). Its result changed, so both steps
 *    drop the function before creating it (older code reads the columns it knows). And
 *    `events_add`, an emit's INSERT that leases to the emitting instance what its targets' caps allow.
 */
const STEPS: ReadonlyArray<(s: string) => string> = [
  (s) => `CREATE TABLE IF NOT EXISTS ${s}.events_outbox (
  id BIGSERIAL PRIMARY KEY,
  service TEXT NOT NULL,
  event_id TEXT NOT NULL, type TEXT NOT NULL, source TEXT NOT NULL, target TEXT NOT NULL,
  body TEXT NOT NULL, created_at BIGINT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at BIGINT NOT NULL,
  last_attempt_at BIGINT, last_status INTEGER, last_error TEXT,
  traceparent TEXT, tracestate TEXT,
  leased_until BIGINT, lease_owner TEXT
);
CREATE INDEX IF NOT EXISTS events_outbox_due ON ${s}.events_outbox (service, target, next_attempt_at, id);
CREATE INDEX IF NOT EXISTS events_outbox_leased ON ${s}.events_outbox (service, target, leased_until) WHERE leased_until IS NOT NULL;
CREATE TABLE IF NOT EXISTS ${s}.events_dead_letters (
  id BIGINT PRIMARY KEY,
  service TEXT NOT NULL,
  event_id TEXT NOT NULL, type TEXT NOT NULL, source TEXT NOT NULL, target TEXT NOT NULL,
  body TEXT NOT NULL, created_at BIGINT NOT NULL,
  attempts INTEGER NOT NULL, next_attempt_at BIGINT NOT NULL,
  last_attempt_at BIGINT, last_status INTEGER, last_error TEXT,
  traceparent TEXT, tracestate TEXT,
  dead_at BIGINT NOT NULL, reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_dead_letters_service ON ${s}.events_dead_letters (service, event_id);
CREATE TABLE IF NOT EXISTS ${s}.events_targets (
  service TEXT NOT NULL, target TEXT NOT NULL,
  down BOOLEAN NOT NULL DEFAULT false,
  probe_at BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (service, target)
);
CREATE TABLE IF NOT EXISTS ${s}.events_inbox (
  service  text        NOT NULL,
  source   text        NOT NULL,
  event_id text        NOT NULL,
  handler  text        NOT NULL,
  done_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (service, source, event_id, handler)
);
CREATE INDEX IF NOT EXISTS events_inbox_done_at ON ${s}.events_inbox (service, done_at);`,
  (s) => `CREATE INDEX IF NOT EXISTS events_dead_letters_dead_at ON ${s}.events_dead_letters (service, dead_at, id);`,
  (s) => claimFunction(s),
  (s) => `${claimFunction(s)}\n${addFunction(s)}`,
];

/**
 * Leases up to `p_limit` due deliveries to `p_target` for `p_owner`, in one statement (one round
 * trip, autocommit, no WAL flush awaited: a claim lost in a crash only makes its rows claimable
 * again). It locks the target's row first; the UPDATE after it is a statement of its own, so its
 * snapshot sees every claim committed before the lock was granted. Within the lock it counts the
 * leases live on the target across instances and takes what `p_cap` leaves; a target marked down
 * gets one delivery at a time, at most every `p_probe_gap` ms; a probe takes the soonest, due or
 * not. Returns the leased rows, each with `others` (leases other instances hold) and `down`. When it
 * leased fewer than asked, one more row of NULLs follows, carrying `others`, `down` and what the
 * lane asks next (PostgresOutbox.nextDueAt): `next_due`, the soonest unleased delivery's time,
 * `lease_end`, the soonest end of another instance's lease, and `db_now`, the database's clock.
 */
const claimFunction = (s: string) => `DROP FUNCTION IF EXISTS ${s}.events_claim(TEXT, TEXT, BIGINT, BIGINT, TEXT, INTEGER, INTEGER, BOOLEAN, BIGINT);
CREATE FUNCTION ${s}.events_claim(p_service TEXT, p_target TEXT, p_now BIGINT,
  p_lease BIGINT, p_owner TEXT, p_limit INTEGER, p_cap INTEGER, p_probe BOOLEAN, p_probe_gap BIGINT)
RETURNS TABLE (id BIGINT, event_id TEXT, type TEXT, source TEXT, target TEXT, body TEXT, created_at BIGINT,
  attempts INTEGER, next_attempt_at BIGINT, last_attempt_at BIGINT, last_status INTEGER, last_error TEXT,
  traceparent TEXT, tracestate TEXT, others BIGINT, down BOOLEAN, next_due BIGINT, lease_end BIGINT, db_now BIGINT)
LANGUAGE plpgsql AS $claim$
#variable_conflict use_column
DECLARE
  t_down BOOLEAN;
  t_probe_at BIGINT;
  want INTEGER;
  cap INTEGER;
  got BIGINT;
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  SELECT t.down, t.probe_at INTO t_down, t_probe_at FROM ${s}.events_targets t
    WHERE t.service = p_service AND t.target = p_target FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO ${s}.events_targets (service, target) VALUES (p_service, p_target) ON CONFLICT DO NOTHING;
    SELECT t.down, t.probe_at INTO t_down, t_probe_at FROM ${s}.events_targets t
      WHERE t.service = p_service AND t.target = p_target FOR UPDATE;
  END IF;
  cap := CASE WHEN p_probe OR t_down THEN 1 ELSE p_cap END;
  want := CASE WHEN t_down AND NOT p_probe AND t_probe_at > p_now THEN 0 WHEN p_probe OR t_down THEN 1 ELSE p_limit END;
  RETURN QUERY
  WITH live AS (SELECT count(*) AS n, count(*) FILTER (WHERE o.lease_owner <> p_owner) AS others FROM ${s}.events_outbox o
      WHERE o.service = p_service AND o.target = p_target AND o.leased_until > ${DB_NOW}),
    pick AS (SELECT o.id FROM ${s}.events_outbox o
      WHERE o.service = p_service AND o.target = p_target AND (p_probe OR o.next_attempt_at <= p_now)
        AND (o.leased_until IS NULL OR o.leased_until <= ${DB_NOW})
      ORDER BY o.next_attempt_at, o.id LIMIT GREATEST(0, LEAST(want, cap - (SELECT n FROM live)))
      FOR UPDATE SKIP LOCKED),
    leased AS (UPDATE ${s}.events_outbox o SET leased_until = ${DB_NOW} + p_lease, lease_owner = p_owner
      WHERE o.id IN (SELECT pick.id FROM pick)
      RETURNING o.id, o.event_id, o.type, o.source, o.target, o.body, o.created_at, o.attempts, o.next_attempt_at,
        o.last_attempt_at, o.last_status, o.last_error, o.traceparent, o.tracestate),
    probed AS (UPDATE ${s}.events_targets t SET probe_at = p_now + p_probe_gap
      WHERE t.service = p_service AND t.target = p_target AND t_down AND NOT p_probe AND EXISTS (SELECT 1 FROM leased))
  SELECT l.*, (SELECT live.others FROM live), t_down, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT FROM leased l;
  GET DIAGNOSTICS got = ROW_COUNT;
  IF got < p_limit OR got = 0 THEN
    RETURN QUERY
    SELECT NULL::BIGINT, NULL::TEXT, NULL::TEXT, NULL::TEXT, NULL::TEXT, NULL::TEXT, NULL::BIGINT, NULL::INTEGER, NULL::BIGINT,
      NULL::BIGINT, NULL::INTEGER, NULL::TEXT, NULL::TEXT, NULL::TEXT,
      count(*) FILTER (WHERE o.leased_until > ${DB_NOW} AND o.lease_owner <> p_owner), t_down,
      MIN(o.next_attempt_at) FILTER (WHERE o.leased_until IS NULL OR o.leased_until <= ${DB_NOW}),
      MIN(o.leased_until) FILTER (WHERE o.leased_until > ${DB_NOW} AND o.lease_owner <> p_owner),
      ${DB_NOW}
    FROM ${s}.events_outbox o WHERE o.service = p_service AND o.target = p_target;
  END IF;
END
$claim$;`;

/**
 * An emit's INSERT (the group commit's, outside a caller's transaction): the rows for the targets
 * in `p_targets` that are not down are leased to `p_owner`, as many as each target's cap in
 * `p_caps` leaves beside the leases live on it (every instance's), the oldest first; the rest are
 * written unleased, for any instance to claim. It locks those targets' rows first, in order, as a
 * claim does, so that the cap holds across instances; the count is a statement of its own, after
 * the lock. Ids follow the emits' order. Returns each row's id, event id, target, and whether it
 * was leased (`kept`).
 */
const addFunction = (s: string) => `CREATE OR REPLACE FUNCTION ${s}.events_add(p_service TEXT, p_owner TEXT, p_lease BIGINT,
  p_event_id TEXT[], p_type TEXT[], p_source TEXT[], p_target TEXT[], p_body TEXT[], p_created_at BIGINT[],
  p_traceparent TEXT[], p_tracestate TEXT[], p_targets TEXT[], p_caps INTEGER[])
RETURNS TABLE (id BIGINT, event_id TEXT, target TEXT, kept BOOLEAN)
LANGUAGE plpgsql AS $add$
#variable_conflict use_column
BEGIN
  INSERT INTO ${s}.events_targets (service, target) SELECT p_service, t FROM unnest(p_targets) AS t ON CONFLICT DO NOTHING;
  PERFORM 1 FROM ${s}.events_targets t WHERE t.service = p_service AND t.target = ANY(p_targets) ORDER BY t.target FOR UPDATE;
  RETURN QUERY
  WITH room AS (SELECT k.target, k.cap - (SELECT count(*) FROM ${s}.events_outbox o
        WHERE o.service = p_service AND o.target = k.target AND o.leased_until > ${DB_NOW}) AS n
      FROM unnest(p_targets, p_caps) AS k(target, cap)
      JOIN ${s}.events_targets t ON t.service = p_service AND t.target = k.target AND NOT t.down),
    u AS (SELECT x.*, row_number() OVER (PARTITION BY x.target ORDER BY x.ord) AS rn
      FROM unnest(p_event_id, p_type, p_source, p_target, p_body, p_created_at, p_traceparent, p_tracestate)
        WITH ORDINALITY AS x(event_id, type, source, target, body, created_at, traceparent, tracestate, ord)),
    ins AS (INSERT INTO ${s}.events_outbox (service, event_id, type, source, target, body, created_at, next_attempt_at,
        traceparent, tracestate, leased_until, lease_owner)
      SELECT p_service, u.event_id, u.type, u.source, u.target, u.body, u.created_at, u.created_at, u.traceparent, u.tracestate,
        CASE WHEN u.rn <= r.n THEN ${DB_NOW} + p_lease END, CASE WHEN u.rn <= r.n THEN p_owner END
      FROM u LEFT JOIN room r ON r.target = u.target ORDER BY u.ord
      RETURNING id, event_id, target, lease_owner IS NOT NULL)
  SELECT * FROM ins;
END
$add$;`;

/** The version this release's code reads and writes. */
export const SCHEMA_VERSION = STEPS.length;

/** The schema and the table holding its version (one row). */
const preamble = (s: string) =>
  `CREATE SCHEMA IF NOT EXISTS ${s};\nCREATE TABLE IF NOT EXISTS ${s}.events_library_schema (version INTEGER NOT NULL);`;

const setVersion = (s: string) =>
  `DELETE FROM ${s}.events_library_schema WHERE version < ${SCHEMA_VERSION};
INSERT INTO ${s}.events_library_schema (version) SELECT ${SCHEMA_VERSION} WHERE NOT EXISTS (SELECT 1 FROM ${s}.events_library_schema);`;

/** The whole script for `schema`, as `events-library migrate` prints it: it creates the tables or upgrades them from any earlier version. */
export function schemaSql(schema: string): string {
  const s = quoteSchema(schema);
  return [preamble(s), ...STEPS.map((step, i) => `-- version ${i + 1}\n${step(s)}`), `-- the version\n${setVersion(s)}`].join('\n\n') + '\n';
}

const missing = (error: unknown) => ['42P01', '3F000'].includes(String((error as { code?: unknown })?.code));

/** The schema's version: 0 when it has no version table (no tables, or the previous release's). */
export async function schemaVersion(db: TransactionClient, s: string): Promise<number> {
  try {
    const { rows } = await db.query<{ version: number | null }>(`SELECT max(version) AS version FROM ${s}.events_library_schema`);
    return rows[0]?.version ?? 0;
  } catch (error) {
    if (missing(error)) return 0;
    throw error;
  }
}

/**
 * Brings schema `s` to SCHEMA_VERSION, on `client` inside the caller's transaction: takes the lock,
 * reads the version under it (another instance may have just upgraded), runs the missing steps.
 * A schema newer than this release is left as it is (its steps only add).
 */
export async function upgradeSchema(client: TransactionClient, s: string): Promise<{ from: number; to: number }> {
  await client.query(`SELECT pg_advisory_xact_lock(${DDL_LOCK})`);
  await client.query(preamble(s));
  const from = await schemaVersion(client, s);
  if (from >= SCHEMA_VERSION) return { from, to: from };
  await client.query(STEPS.slice(from).map((step) => step(s)).join('\n') + '\n' + setVersion(s));
  return { from, to: SCHEMA_VERSION };
}

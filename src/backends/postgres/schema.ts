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

/** The key of the advisory lock every setup and migration takes (the previous release's outbox took it too). */
export const DDL_LOCK = 7_263_514_001;

/**
 * Each version's statements in schema `s` (quoted), in order: step `i` brings the schema to
 * version `i + 1`. Every statement is idempotent, so the printed script runs on any earlier version.
 * 1: the tables as the previous release (0.1) created them, without a version.
 * 2: the version table (created by every setup), and an index that lists a service's dead letters in order.
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
];

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

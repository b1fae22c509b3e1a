/** A double-quoted SQL identifier. */
export const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/** The inbox table, schema-qualified and quoted. */
export const inboxTable = (schema: string): string => `${quoteIdent(schema)}.events_inbox`;

/**
 * The PostgreSQL inbox's DDL (idempotent), run on first use, and printed for teams that run
 * migrations themselves. One row per completed handler (and one `*` row once every handler
 * completed), keyed by (service, source, event id, handler): services may share the table.
 */
export function inboxDdl(schema: string): string {
  return [`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)};`, inboxTableDdl(quoteIdent(schema))].join('\n');
}

/** The inbox's table and index in `quotedSchema` (as `npx events-library migrate` prints them with the outbox's). */
export function inboxTableDdl(quotedSchema: string): string {
  const table = `${quotedSchema}.events_inbox`;
  return [
    `CREATE TABLE IF NOT EXISTS ${table} (
  service  text        NOT NULL,
  source   text        NOT NULL,
  event_id text        NOT NULL,
  handler  text        NOT NULL,
  done_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (service, source, event_id, handler)
);`,
    `CREATE INDEX IF NOT EXISTS events_inbox_done_at ON ${table} (service, done_at);`,
  ].join('\n');
}

/** Serialises concurrent first uses (two instances starting together): CREATE … IF NOT EXISTS alone can race. */
export const DDL_LOCK_KEY = 'events-library:ddl';

// The tables as the previous release (0.1, commit 94f3a2e) created them: the text of its
// `outboxDdl` (src/stores/postgres-outbox.ts) and `inboxDdl` (src/stores/postgres-inbox-schema.ts),
// copied here so that a change to today's DDL cannot change what "the previous release" means.

/** The 0.1 DDL in schema `s` (quoted). */
export const schemaOf01 = (s: string): string => `CREATE SCHEMA IF NOT EXISTS ${s};

-- inbox
CREATE TABLE IF NOT EXISTS ${s}.events_inbox (
  service  text        NOT NULL,
  source   text        NOT NULL,
  event_id text        NOT NULL,
  handler  text        NOT NULL,
  done_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (service, source, event_id, handler)
);
CREATE INDEX IF NOT EXISTS events_inbox_done_at ON ${s}.events_inbox (service, done_at);

-- outbox
CREATE TABLE IF NOT EXISTS ${s}.events_outbox (
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
);`;

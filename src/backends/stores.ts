import type { ResolvedConfig } from '../config.js';
import { ConfigError } from '../errors/index.js';
import type { DeadLetterOperator, OperatorLocation } from '../operate/operator.js';
import type { InboxStore } from '../receive/inbox-store.js';
import type { OutboxStore } from '../send/outbox-store.js';
import { openBrokerOperator } from './broker-link.js';
import { memoryBackend } from './memory/backend.js';
import { postgresBackend } from './postgres/backend.js';
import { sqliteBackend } from './sqlite/backend.js';

/**
 * A store backend, registered below: whether the configuration puts a bus's outbox or inbox in it,
 * how it opens them, and which operator location (`{ outbox }`, `{ database }`) it serves.
 * Each opens its driver (an optional peer) only when opened.
 */
export interface StoreBackend {
  keepsOutbox(config: ResolvedConfig): boolean;
  keepsInbox(config: ResolvedConfig): boolean;
  openOutbox(config: ResolvedConfig): OutboxStore;
  openInbox(config: ResolvedConfig): InboxStore;
  /** The operator location key it serves, if any. */
  readonly location?: 'outbox' | 'database';
  operator?(location: OperatorLocation): DeadLetterOperator;
}

/** In order of precedence: a SQLite path set apart wins over a database, which wins over memory (which keeps everything else). */
function backends(): readonly StoreBackend[] {
  return [sqliteBackend, postgresBackend, memoryBackend];
}

export function openOutbox(config: ResolvedConfig): OutboxStore {
  return backends().find((b) => b.keepsOutbox(config))!.openOutbox(config);
}

export function openInbox(config: ResolvedConfig): InboxStore {
  return backends().find((b) => b.keepsInbox(config))!.openInbox(config);
}

const WHERE = 'which outbox? pass { outbox: path }, { database: url } or { broker: url }';

/** The operator of a location: an outbox file, a database, a broker (each opened by its backend). */
export function openOperator(location: OperatorLocation): DeadLetterOperator {
  if (typeof location !== 'object' || location === null) throw new ConfigError(WHERE);
  if ('broker' in location) return openBrokerOperator(location);
  const backend = backends().find((b) => b.location !== undefined && b.location in location);
  if (!backend?.operator) throw new ConfigError(WHERE);
  return backend.operator(location);
}

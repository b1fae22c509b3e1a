import type { ResolvedConfig } from '../config.js';

/**
 * "Describe only": set by `events-library asyncapi` before it loads a service's module, so that
 * every bus the module builds only records what it declares and subscribes to: no target URL or
 * secret is resolved, no broker, database or outbox file is opened, nothing is sent. A flag on
 * the process (a global symbol), so that it holds for every copy of the library the module loads.
 */
const FLAG = Symbol.for('events-library.describe-only');

export function describeOnly(): boolean {
  return (globalThis as Record<symbol, unknown>)[FLAG] === true;
}

export function setDescribeOnly(on: boolean): void {
  (globalThis as Record<symbol, unknown>)[FLAG] = on;
}

/** A configuration with nothing to open: no broker, database or files (the in-memory stores). */
export function describingConfig(config: ResolvedConfig): ResolvedConfig {
  return { ...config, broker: undefined, database: undefined, outbox: { ...config.outbox, path: undefined }, inbox: { ...config.inbox, path: undefined } };
}

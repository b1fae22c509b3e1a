#!/usr/bin/env node
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { inspectOutbox, listDeadLetters, type PostgresOutboxLocation, replayEach } from './operate/functions.js';
import { BROKER_USAGE, isBrokerCommand, runBrokerCommand } from './broker-cli.js';
import { DEFAULTS } from './defaults.js';
import { migrate as migrateDatabase, redact } from './backends/postgres/database.js';
import { quoteSchema, schemaSql } from './backends/postgres/schema.js';
import { ConfigError } from './errors/index.js';
import type { DeadLetter, DeadLetterFilter, OutboxStats } from './send/outbox-store.js';
import { escapeField, escapeOutput, safeJson } from './terminal-safe.js';

/**
 * `events-library`: the operator's view of a durable outbox file. Argument parsing and printing
 * only; the work is done by the functions of admin.ts, which are exported for programs too.
 * Exit codes: 0 done, 1 failed (e.g. the file is locked, or a replayed id matched nothing), 2 wrong
 * usage or configuration (no command, or a file that is not an outbox).
 * Everything printed is terminal-safe (terminal-safe.ts): stored error bodies, types and names
 * come from elsewhere, and their control characters are printed escaped, never raw.
 */

const USAGE = `Usage: events-library <command> [options]

Commands:
  status                          pending deliveries and dead letters per target, oldest pending age
  dead-letters [--target T]       list dead letters (--json: the full records, body included)
  replay <id|eventId>... [--target T]
                                  move dead letters back to pending; numeric arguments are
                                  delivery ids, others event ids
  replay --all [--target T]       replay every dead letter (of target T)
  migrate [--apply]               print the SQL of the PostgreSQL tables (--apply: run it on --database)
  secret                          print a fresh signing secret (whsec_…, 32 random bytes)
  help                            this text

Options:
  --outbox <path>   the durable outbox file (default: $EVENTS_OUTBOX_PATH)
  --database <url>  the PostgreSQL outbox instead (default: $EVENTS_DATABASE_URL), with:
  --service <name>  the service whose outbox it is (default: $EVENTS_SERVICE_NAME)
  --schema <name>   the schema of the tables (default: $EVENTS_DATABASE_SCHEMA, else public)
  --target <name>   only this target service
  --json            machine-readable output
  -h, --help        this text

status, dead-letters and replay read the outbox file of a service, beside the running service;
they refuse a file that is not an outbox and never create one. With --database (or
EVENTS_DATABASE_URL and no outbox file) they read the service's rows in PostgreSQL instead. A running service picks replayed
deliveries up within its poll interval (2 s by default).
Exit codes: 0 done; 1 failed (e.g. an id matched no dead letter); 2 wrong usage or configuration.

${BROKER_USAGE}`;

const OPTIONS = {
  outbox: { type: 'string' },
  database: { type: 'string' },
  service: { type: 'string' },
  schema: { type: 'string' },
  apply: { type: 'boolean' },
  target: { type: 'string' },
  json: { type: 'boolean' },
  all: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Which options each command takes (besides --help; the store options are checked apart). */
const COMMANDS: Record<string, readonly string[]> = {
  status: ['json', 'outbox', 'database', 'service', 'schema'],
  'dead-letters': ['target', 'json', 'outbox', 'database', 'service', 'schema'],
  replay: ['target', 'json', 'all', 'outbox', 'database', 'service', 'schema'],
  migrate: ['apply', 'database', 'schema'],
  secret: [],
};

const ERROR_MAX = 72;

class UsageError extends Error {}

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** Runs one command line; resolves with the exit code. */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io, now = Date.now()): Promise<number> {
  const safe: Io = { out: (text) => io.out(escapeOutput(text)), err: (text) => io.err(escapeOutput(text)) };
  try {
    return await run(argv, env, safe, now);
  } catch (error) {
    const message = escapeField(String((error as Error)?.message ?? error));
    if (error instanceof UsageError) {
      safe.err(`events-library: ${message}\nRun "events-library help" for usage.\n`);
      return 2;
    }
    if (error instanceof ConfigError) {
      safe.err(`events-library: ${message}\n`);
      return 2;
    }
    safe.err(`events-library: ${message}\n`);
    return 1;
  }
}

async function run(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io, now: number): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  const [command, ...args] = positionals;
  if (values.help || command === 'help') {
    io.out(USAGE);
    return 0;
  }
  if (command === undefined) {
    // Wrong usage, not a request for help: scripts see a failure, people see the usage.
    io.err(`events-library: which command?\n\n${USAGE}`);
    return 2;
  }
  const allowed = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!allowed) throw new UsageError(`unknown command "${command}": use status, dead-letters, replay, migrate, secret or help`);
  for (const name of ['target', 'json', 'all', 'outbox', 'database', 'service', 'schema', 'apply'] as const) {
    if (values[name] !== undefined && !allowed.includes(name)) throw new UsageError(`${command} does not take --${name}`);
  }
  if (command !== 'replay' && args.length > 0) throw new UsageError(`${command} takes no arguments, got "${args.join(' ')}"`);
  if (command === 'secret') {
    io.out(`${newSecret()}\n`);
    return 0;
  }
  const schema = values.schema ?? nonEmpty(env.EVENTS_DATABASE_SCHEMA) ?? DEFAULTS.database.schema;
  if (command === 'migrate') return migrate(values.apply === true, values.database ?? nonEmpty(env.EVENTS_DATABASE_URL), schema, io);

  // An explicit flag first, then the variables; a file before a database, as the bus does.
  const database = values.database ?? (values.outbox === undefined ? nonEmpty(env.EVENTS_DATABASE_URL) : undefined);
  const file = values.outbox ?? (values.database === undefined ? nonEmpty(env.EVENTS_OUTBOX_PATH) : undefined);
  let path: string | PostgresOutboxLocation;
  if (file !== undefined) path = file;
  else if (database !== undefined) {
    const service = values.service ?? nonEmpty(env.EVENTS_SERVICE_NAME);
    if (service === undefined) throw new UsageError('which service? set EVENTS_SERVICE_NAME or pass --service <name> with the database');
    quoteSchema(schema);
    path = { database, service, schema };
  } else {
    throw new UsageError('which outbox? set EVENTS_OUTBOX_PATH or pass --outbox <path> (PostgreSQL: EVENTS_DATABASE_URL or --database <url>)');
  }
  const target = values.target;
  const json = values.json === true;
  const label = typeof path === 'string' ? path : `${redact(path.database as string)} (schema ${path.schema}, service ${path.service})`;

  if (command === 'status') {
    const stats = typeof path === 'string' ? inspectOutbox(path) : await inspectOutbox(path);
    io.out(json ? `${safeJson(statusJson(label, stats, now), 2)}\n` : formatStatus(label, stats, now));
    return 0;
  }
  if (command === 'dead-letters') {
    const filter = target === undefined ? undefined : { target };
    const letters = typeof path === 'string' ? listDeadLetters(path, filter) : await listDeadLetters(path, filter);
    io.out(json ? `${safeJson(letters, 2)}\n` : formatDeadLetters(letters, target, now));
    return 0;
  }
  // replay
  if (values.all && args.length > 0) throw new UsageError('replay takes ids or --all, not both');
  if (!values.all && args.length === 0) {
    throw new UsageError('replay needs the dead letters to replay: delivery ids, event ids, or --all');
  }
  // --all with nothing to replay is done (exit 0); an id that matches no dead letter is a mistake (exit 1).
  const ids = [...new Set(args)];
  const selections = values.all ? [target === undefined ? ('all' as const) : { target }] : ids.map((arg) => selection(arg, target));
  const counts = typeof path === 'string' ? replayEach(path, selections) : await replayEach(path, selections);
  const count = counts.reduce((sum, n) => sum + n, 0);
  const unmatched = values.all ? [] : ids.filter((_, i) => counts[i] === 0);
  if (json) io.out(`${safeJson({ replayed: count, ...(unmatched.length > 0 ? { unmatched } : {}) })}\n`);
  else if (count === 0) io.out('replayed 0 dead letters\n');
  else io.out(`replayed ${count} dead letter${count === 1 ? '' : 's'}; a running service delivers them within its poll interval\n`);
  if (unmatched.length === 0) return 0;
  const scope = target === undefined ? '' : ` of target ${escapeField(target)}`;
  io.err(`events-library: no dead letter${scope} matches ${unmatched.map((arg) => `"${escapeField(arg)}"`).join(', ')}: ` +
    'list them with "events-library dead-letters" (numbers are delivery ids, others event ids)\n');
  return 1;
}

/** Prints the SQL of every table of the library in `schema`; with `apply`, runs it on the database. */
async function migrate(apply: boolean, database: string | undefined, schema: string, io: Io): Promise<number> {
  const sql = schemaSql(schema);
  if (!apply) {
    io.out(sql);
    return 0;
  }
  if (database === undefined) throw new UsageError('migrate --apply needs the database: set EVENTS_DATABASE_URL or pass --database <url>');
  const { where, from, to } = await migrateDatabase(database, schema);
  io.out(`applied: the events-library tables exist in schema ${schema} of ${where} (version ${from} → ${to})\n`);
  return 0;
}

/** A numeric argument is a delivery id, any other an event id. */
function selection(arg: string, target: string | undefined): DeadLetterFilter {
  const scope = target === undefined ? {} : { target };
  return /^\d+$/.test(arg) ? { ids: [Number(arg)], ...scope } : { eventId: arg, ...scope };
}

/** A fresh Standard Webhooks secret: `whsec_` + base64 of 32 random bytes (HMAC-SHA256's block-sized key). */
function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

function statusJson(path: string, stats: OutboxStats, now: number) {
  const oldest = oldestOf(stats);
  const targets = Object.fromEntries(
    Object.entries(stats.targets).map(([name, t]) => [
      name,
      { ...t, ...(t.oldestCreatedAt !== undefined ? { oldestPendingAgeMs: now - t.oldestCreatedAt } : {}) },
    ]),
  );
  return { path, ...stats, ...(oldest !== undefined ? { oldestPendingAgeMs: now - oldest } : {}), targets };
}

function formatStatus(path: string, stats: OutboxStats, now: number): string {
  const oldest = oldestOf(stats);
  const lines = [
    `outbox ${escapeField(path)}`,
    `pending: ${stats.pending}   dead letters: ${stats.deadLetters}   oldest pending: ${oldest === undefined ? '-' : `${age(now - oldest)} ago`}`,
  ];
  const names = Object.keys(stats.targets).sort();
  if (names.length > 0) {
    const rows = names.map((name) => {
      const t = stats.targets[name]!;
      return [escapeField(name), String(t.pending), String(t.deadLetters), t.oldestCreatedAt === undefined ? '-' : age(now - t.oldestCreatedAt)];
    });
    lines.push('', ...table(['target', 'pending', 'dead letters', 'oldest pending'], rows, [false, true, true, true]));
  }
  if (stats.deadLetters > 0) lines.push('', 'List them with "events-library dead-letters"; replay with "events-library replay --all".');
  return `${lines.join('\n')}\n`;
}

function formatDeadLetters(letters: readonly DeadLetter[], target: string | undefined, now: number): string {
  if (letters.length === 0) return `no dead letters${target === undefined ? '' : ` for target ${escapeField(target)}`}\n`;
  const rows = letters.map((d) => [
    String(d.id),
    escapeField(d.eventId),
    escapeField(d.type),
    escapeField(d.target),
    d.lastStatus === undefined ? '-' : String(d.lastStatus),
    escapeField(d.reason),
    String(d.attempts),
    `${new Date(d.deadAt).toISOString().slice(0, 19)}Z (${age(now - d.deadAt)} ago)`,
    short(d.lastError),
  ]);
  const header = ['id', 'event id', 'type', 'target', 'status', 'reason', 'attempts', 'dead since', 'last error'];
  const numeric = [true, false, false, false, true, false, true, false, false];
  return `${table(header, rows, numeric).join('\n')}\n`;
}

function oldestOf(stats: OutboxStats): number | undefined {
  const times = Object.values(stats.targets).flatMap((t) => (t.oldestCreatedAt === undefined ? [] : [t.oldestCreatedAt]));
  return times.length > 0 ? Math.min(...times) : undefined;
}

function table(header: string[], rows: string[][], numeric: boolean[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : numeric[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

/**
 * The last error on one line, terminal-safe: `HTTP 400 invalid_data: email is not…` from the
 * receiver's JSON answer. Runs of spaces collapse; line breaks and other controls show escaped.
 */
function short(error: string | undefined): string {
  if (!error) return '-';
  let text = error;
  const answer = /^HTTP (\d{3}): (\{.*\})$/s.exec(error);
  if (answer) {
    try {
      const body = JSON.parse(answer[2]!) as { error?: unknown; message?: unknown };
      if (typeof body.message === 'string') {
        text = `HTTP ${answer[1]}${typeof body.error === 'string' ? ` ${body.error}` : ''}: ${body.message}`;
      }
    } catch {
      // not JSON after all: show it as it is
    }
  }
  const flat = escapeField(text.trim()).replace(/\s+/g, ' ');
  if (flat.length <= ERROR_MAX) return flat;
  // Cut before an escape rather than through it.
  return `${flat.slice(0, ERROR_MAX - 1).replace(/\\(x[0-9a-f]?|u[0-9a-f]{0,3})?$/, '')}…`;
}

/** 3d 4h, 2h 5m, 4m 10s, 12s. */
function age(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const [d, h, m] = [Math.floor(s / 86400), Math.floor((s % 86400) / 3600), Math.floor((s % 3600) / 60)];
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

if (require.main === module) {
  // `events-library dead-letters | head`: a reader that stops early is not an error worth a stack trace.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(process.exitCode ?? 0);
  });
  const io: Io = { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) };
  const argv = process.argv.slice(2);
  const done = isBrokerCommand(argv, process.env) ? runBrokerCommand(argv, process.env, io) : main(argv, process.env, io);
  void done.then((code) => {
    process.exitCode = code;
  });
}

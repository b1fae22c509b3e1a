#!/usr/bin/env node
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { nonEmpty } from './config.js';
import { DEFAULTS } from './defaults.js';
import { migrate as migrateDatabase, redact } from './backends/postgres/database.js';
import { schemaSql } from './backends/postgres/schema.js';
import { checkDocuments, describeModule, formatChecks, readDocument, readFolder } from './contracts/commands.js';
import { ConfigError } from './errors/index.js';
import { startStandaloneConsole } from './console/standalone.js';
import { createLogger } from './logger.js';
import { withOperator } from './operate/functions.js';
import type { DeadLetter, DeadLetterFilter, DeadLetterSelection, OperatorLocation, OutboxStats } from './operate/operator.js';
import { escapeField, escapeOutput, safeJson } from './terminal-safe.js';

/**
 * `events-library`: the operator's view of a service's dead letters and backlog, wherever they
 * are (an outbox file, a PostgreSQL outbox, a broker's dead-letter queues). Argument parsing and
 * printing only; the work is done by the operator functions (src/operate/functions.ts), which
 * programs use too. Exit codes: 0 done, 1 failed (e.g. the file is locked, or an id matched
 * nothing), 2 wrong usage or configuration (no command, or a file that is not an outbox).
 * Everything printed is terminal-safe (terminal-safe.ts): stored error bodies, types and names
 * come from elsewhere, and their control characters are printed escaped, never raw.
 */

const USAGE = `Usage: events-library <command> [options]

Commands:
  status                          pending deliveries and dead letters per target, oldest pending age
  dead-letters [filters] [--limit <n>]
                                  list dead letters (--json: the full records, body included);
                                  a broker's at most --limit (default 10000), the number left out said
  replay <id>... | --all | filters
                                  put dead letters back to be delivered, attempts reset
  discard <id>... | --all | filters
                                  delete dead letters for good
  console [--token T] [--host H] [--port P]
                                  serve the operations console (the page a running service serves at
                                  <path>/console) on this store, at http://127.0.0.1:8080/events/console;
                                  needs the operator token (--token, else $EVENTS_CONSOLE_TOKEN);
                                  binds 127.0.0.1 unless --host says otherwise
  migrate [--apply]               print the SQL of the PostgreSQL tables (--apply: run it on --database)
  secret                          print a fresh signing secret (whsec_…, 32 random bytes)
  asyncapi --module <file>        print the AsyncAPI 3.0 document of the service a module describes
                                  (what it declares and subscribes to on the default bus, or the bus
                                  it exports), without resolving targets, connecting or sending
  check <producer.json> <consumer.json> | --all <dir>
                                  is every payload the producer may send valid for the consumer?
                                  (--all: every ordered pair of the service documents in <dir>)
  help                            this text

Where (one of; default: $EVENTS_OUTBOX_PATH, else $EVENTS_BROKER_URL, else $EVENTS_DATABASE_URL):
  --outbox <path>   a service's durable outbox file
  --database <url>  a PostgreSQL outbox, with --schema <name> (default: $EVENTS_DATABASE_SCHEMA, else public)
                    and --service <name> (default: $EVENTS_SERVICE_NAME, else every service's rows)
  --broker <url>    RabbitMQ or Kafka: the dead-letter queue (topic) of --service <name> (default:
                    $EVENTS_SERVICE_NAME, else every service under the prefix), and --prefix <p> (default: $EVENTS_BROKER_PREFIX)

Filters (dead-letters, replay, discard):
  --target <name>   only dead letters for this receiving service
  --type <type>     only events of this type
  --event <id>      only this event id

Options:
  --json            machine-readable output
  -h, --help        this text

Ids are the dead-letter ids "events-library dead-letters" lists. The commands work beside the
running service: they refuse a file that is not an outbox, or a database without the tables, and
never create one. A running service picks replayed deliveries up within its poll interval (2 s by
default), at once with PostgreSQL.
Exit codes: 0 done; 1 failed (e.g. an id matched no dead letter; check: a payload the consumer may
refuse, or compatibility it cannot prove); 2 wrong usage or configuration.
`;

const OPTIONS = {
  outbox: { type: 'string' },
  database: { type: 'string' },
  broker: { type: 'string' },
  service: { type: 'string' },
  schema: { type: 'string' },
  prefix: { type: 'string' },
  apply: { type: 'boolean' },
  target: { type: 'string' },
  type: { type: 'string' },
  event: { type: 'string' },
  limit: { type: 'string' },
  json: { type: 'boolean' },
  all: { type: 'boolean' },
  module: { type: 'string' },
  token: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Option = Exclude<keyof typeof OPTIONS, 'help'>;

const WHERE: readonly Option[] = ['outbox', 'database', 'broker', 'service', 'schema', 'prefix'];
const FILTERS: readonly Option[] = ['target', 'type', 'event'];

/** Which options each command takes (besides --help). */
const COMMANDS: Record<string, readonly Option[]> = {
  status: ['json', ...WHERE],
  'dead-letters': ['json', 'limit', ...FILTERS, ...WHERE],
  replay: ['json', 'all', ...FILTERS, ...WHERE],
  discard: ['json', 'all', ...FILTERS, ...WHERE],
  console: ['token', 'host', 'port', ...WHERE],
  migrate: ['apply', 'database', 'schema'],
  secret: [],
  asyncapi: ['module'],
  check: ['json', 'all'],
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
    safe.err(`events-library: ${message}\n`);
    return error instanceof ConfigError ? 2 : 1;
  }
}

type Values = ReturnType<typeof parse>['values'];

function parse(argv: readonly string[]) {
  try {
    return parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

async function run(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io, now: number): Promise<number> {
  const { values, positionals } = parse(argv);
  const [command, ...args] = positionals;
  if (values.help || command === 'help') {
    io.out(USAGE);
    return 0;
  }
  if (command === undefined) {
    // `npx events-library`: the full help, on stderr with exit 2 (scripts see a failure, people see the usage).
    io.err(`events-library: which command?\n\n${USAGE}`);
    return 2;
  }
  const allowed = Object.hasOwn(COMMANDS, command) ? COMMANDS[command]! : undefined;
  if (!allowed) throw new UsageError(`unknown command "${command}": use ${Object.keys(COMMANDS).join(', ')} or help`);
  for (const name of Object.keys(OPTIONS) as (keyof typeof OPTIONS)[]) {
    if (name !== 'help' && values[name] !== undefined && !allowed.includes(name)) throw new UsageError(`${command} does not take --${name}`);
  }
  const takesArgs = command === 'replay' || command === 'discard' || command === 'check';
  if (!takesArgs && args.length > 0) throw new UsageError(`${command} takes no arguments, got "${args.join(' ')}"`);
  if (command === 'secret') {
    // A fresh Standard Webhooks secret: `whsec_` + base64 of 32 random bytes (HMAC-SHA256's block-sized key).
    io.out(`whsec_${randomBytes(32).toString('base64')}\n`);
    return 0;
  }
  if (command === 'asyncapi') {
    if (values.module === undefined) throw new UsageError('asyncapi needs the module that declares the events: --module ./dist/events.js');
    io.out(`${safeJson(describeModule(values.module), 2)}\n`);
    return 0;
  }
  if (command === 'check') {
    const all = values.all === true;
    if (args.length !== (all ? 1 : 2)) throw new UsageError(all ? 'check --all takes one folder of service documents' : 'check takes two files: <producer.json> <consumer.json>');
    const checks = checkDocuments(all ? readFolder(args[0]!) : args.map(readDocument), all);
    const compatible = checks.every((check) => check.findings.length === 0);
    io.out(values.json ? `${safeJson({ compatible, checks }, 2)}\n` : formatChecks(checks));
    return compatible ? 0 : 1;
  }
  const schema = values.schema ?? nonEmpty(env.EVENTS_DATABASE_SCHEMA) ?? DEFAULTS.database.schema;
  if (command === 'migrate') {
    if (!values.apply) {
      io.out(schemaSql(schema));
      return 0;
    }
    const database = values.database ?? nonEmpty(env.EVENTS_DATABASE_URL);
    if (database === undefined) throw new UsageError('migrate --apply needs the database: set EVENTS_DATABASE_URL or pass --database <url>');
    const { where, from, to } = await migrateDatabase(database, schema);
    io.out(`applied: the events-library tables exist in schema ${schema} of ${where} (version ${from} → ${to})\n`);
    return 0;
  }

  if (command === 'console') return serveConsole(values, env, schema, io);
  const location = locationOf(values, env, schema);
  const label = labelOf(location);
  const filter = filterOf(values);
  const json = values.json === true;
  if (command === 'status') {
    const stats = await withOperator(location, (operator) => operator.stats());
    io.out(json ? `${safeJson(statusJson(label, stats, now), 2)}\n` : formatStatus(label, stats, now));
    return 0;
  }
  if (command === 'dead-letters') {
    const limit = values.limit === undefined ? undefined : Number(values.limit);
    if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) throw new UsageError(`--limit must be a positive whole number, not "${values.limit}"`);
    const letters = await withOperator(location, (operator) => operator.deadLetters({ ...filter, ...(limit !== undefined ? { limit } : {}) }));
    io.out(json ? `${safeJson(letters, 2)}\n` : formatDeadLetters(letters, filter, now));
    if (letters.more !== undefined) {
      io.err(`events-library: ${letters.more} more dead letter${letters.more === 1 ? '' : 's'} not listed: narrow with --target, --type or --event, or raise --limit\n`);
    }
    return 0;
  }
  return settle(command as 'replay' | 'discard', location, args, values.all === true, filter, json, io);
}

/** console: serves the console on the store until SIGINT or SIGTERM; refuses to start without an operator token. */
async function serveConsole(values: Values, env: NodeJS.ProcessEnv, schema: string, io: Io): Promise<number> {
  const token = values.token ?? nonEmpty(env.EVENTS_CONSOLE_TOKEN);
  if (token === undefined || !/^\S+$/.test(token)) {
    throw new UsageError('console needs the operator token that signs operators in: pass --token <token> or set EVENTS_CONSOLE_TOKEN');
  }
  const port = Number(values.port ?? DEFAULTS.console.port);
  if (!/^\d{1,5}$/.test(values.port ?? '0') || port > 65535) throw new UsageError(`--port must be a port number, not "${values.port}"`);
  // With an outbox file, --service only names the service on the page.
  const file = values.outbox !== undefined || (values.database === undefined && values.broker === undefined && nonEmpty(env.EVENTS_OUTBOX_PATH) !== undefined);
  const service = values.service ?? nonEmpty(env.EVENTS_SERVICE_NAME);
  const running = await startStandaloneConsole({
    location: locationOf(file ? { ...values, service: undefined } : values, env, schema),
    service,
    tokens: { [DEFAULTS.console.operator]: token },
    host: values.host ?? DEFAULTS.console.host,
    port,
    logger: createLogger(nonEmpty(env.EVENTS_LOG_LEVEL) ?? DEFAULTS.logLevel, service),
  });
  io.out(`events-library console at ${running.url} (sign in with the operator token; Ctrl-C stops it)\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await running.close();
  return 0;
}

/** replay / discard: ids (within the filters), or the filters, or --all. An id that matches nothing is a mistake (exit 1). */
async function settle(
  command: 'replay' | 'discard',
  location: OperatorLocation,
  args: string[],
  all: boolean,
  filter: DeadLetterFilter | undefined,
  json: boolean,
  io: Io,
): Promise<number> {
  if (all && args.length > 0) throw new UsageError(`${command} takes ids or --all, not both`);
  if (!all && args.length === 0 && filter === undefined) {
    throw new UsageError(`${command} needs the dead letters to ${command}: their ids, a filter (--target, --type, --event), or --all`);
  }
  const ids = [...new Set(args)];
  const selection: DeadLetterSelection = ids.length > 0 ? { ...filter, ids } : (filter ?? 'all');
  const { count, unmatched } = await withOperator(location, async (operator) => {
    const found = ids.length > 0 ? new Set((await operator.deadLetters(selection as DeadLetterFilter)).map((d) => d.id)) : undefined;
    const count = await (command === 'replay' ? operator.replay(selection) : operator.discard(selection));
    return { count, unmatched: found ? ids.filter((id) => !found.has(id)) : [] };
  });
  const done = command === 'replay' ? 'replayed' : 'discarded';
  if (json) io.out(`${safeJson({ [done]: count, ...(unmatched.length > 0 ? { unmatched } : {}) })}\n`);
  else if (count === 0) io.out(`${done} 0 dead letters\n`);
  else io.out(`${done} ${count} dead letter${count === 1 ? '' : 's'}${command === 'replay' ? replayedTo(location) : ''}\n`);
  if (unmatched.length === 0) return 0;
  const scope = filter === undefined ? '' : ` of ${describe(filter)}`;
  io.err(`events-library: no dead letter${scope} matches ${unmatched.map((id) => `"${escapeField(id)}"`).join(', ')}: ` +
    'list them with "events-library dead-letters"\n');
  return 1;
}

function replayedTo(location: OperatorLocation): string {
  return 'broker' in location ? ` to the queue of ${location.service === undefined ? 'each service' : escapeField(location.service)}` : '; a running service delivers them within its poll interval';
}

/** Where to work: the one flag given, else the variables (a file first, then a broker, then a database). */
function locationOf(values: Values, env: NodeJS.ProcessEnv, schema: string): OperatorLocation {
  const given = (['outbox', 'database', 'broker'] as const).filter((name) => values[name] !== undefined);
  if (given.length > 1) throw new UsageError(`pass one of --${given.join(', --')}`);
  const which =
    given[0] ??
    (nonEmpty(env.EVENTS_OUTBOX_PATH) !== undefined ? 'outbox'
      : nonEmpty(env.EVENTS_BROKER_URL) !== undefined ? 'broker'
        : nonEmpty(env.EVENTS_DATABASE_URL) !== undefined ? 'database'
          : undefined);
  const service = values.service ?? nonEmpty(env.EVENTS_SERVICE_NAME);
  const misplaced = (['service', 'schema', 'prefix'] as const).find(
    (name) => values[name] !== undefined && !(name === 'service' ? which !== 'outbox' : which === (name === 'schema' ? 'database' : 'broker')),
  );
  if (misplaced && which !== undefined) throw new UsageError(`--${misplaced} does not go with --${which}`);
  if (which === 'outbox') return { outbox: values.outbox ?? nonEmpty(env.EVENTS_OUTBOX_PATH)! };
  if (which === 'database') return { database: values.database ?? nonEmpty(env.EVENTS_DATABASE_URL)!, schema, service };
  if (which === 'broker') {
    return { broker: values.broker ?? nonEmpty(env.EVENTS_BROKER_URL)!, prefix: values.prefix ?? nonEmpty(env.EVENTS_BROKER_PREFIX) ?? '', service };
  }
  throw new UsageError('which outbox? set EVENTS_OUTBOX_PATH or pass --outbox <path> (PostgreSQL: --database <url>; a broker: --broker <url>)');
}

function labelOf(location: OperatorLocation): string {
  if ('outbox' in location) return location.outbox;
  if ('database' in location) {
    return `${redact(location.database)} (schema ${location.schema}, ${location.service === undefined ? 'every service' : `service ${location.service}`})`;
  }
  return `${redact(location.broker)} (dead letters of ${location.service ?? 'every service'})`;
}

function filterOf({ target, type, event }: Values): DeadLetterFilter | undefined {
  const filter: DeadLetterFilter = Object.fromEntries(Object.entries({ target, type, eventId: event }).filter(([, value]) => value !== undefined));
  return Object.keys(filter).length > 0 ? filter : undefined;
}

function describe({ target, type, eventId }: DeadLetterFilter): string {
  const parts = [target && `target ${target}`, type && `type ${type}`, eventId && `event ${eventId}`];
  return parts.filter((part): part is string => typeof part === 'string' && part !== '').map(escapeField).join(', ');
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

function formatDeadLetters(letters: readonly DeadLetter[], filter: DeadLetterFilter | undefined, now: number): string {
  if (letters.length === 0) return `no dead letters${filter === undefined ? '' : ` of ${describe(filter)}`}\n`;
  // What a message that did not verify claims is shown, marked as such (never as its event id).
  const claim = (value: string | undefined, claimed: string | undefined) => escapeField(value ?? (claimed === undefined ? '-' : `${claimed} (unverified)`));
  const rows = letters.map((d) => [
    escapeField(d.id),
    claim(d.eventId, d.unverified?.eventId),
    claim(d.type, d.unverified?.type),
    escapeField(d.target),
    d.status === undefined ? '-' : String(d.status),
    escapeField(d.reason),
    d.attempts === undefined ? '-' : String(d.attempts),
    d.deadAt === undefined ? '-' : `${new Date(d.deadAt).toISOString().slice(0, 19)}Z (${age(now - d.deadAt)} ago)`,
    short(d.error),
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

if (require.main === module) {
  // `events-library dead-letters | head`: a reader that stops early is not an error worth a stack trace.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(process.exitCode ?? 0);
  });
  const io: Io = { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) };
  void main(process.argv.slice(2), process.env, io).then((code) => {
    process.exitCode = code;
  });
}

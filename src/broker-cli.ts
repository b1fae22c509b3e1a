import { parseArgs } from 'node:util';
import { ConfigError } from './errors/index.js';
import { escapeField, escapeOutput, safeJson } from './terminal-safe.js';
import { type BrokerAdminOptions, type BrokerDeadLetter, listBrokerDeadLetters, replayBrokerDeadLetters } from './backends/amqp/dead-letters.js';

/**
 * `events-library dead-letters|replay --broker <url>`: the same operator commands on a service's
 * dead-letter queue on RabbitMQ. Chosen by `--broker`, or by EVENTS_BROKER_URL when no `--outbox`
 * is given. Exit codes as the file commands: 0 done, 1 failed, 2 wrong usage or configuration.
 */

export const BROKER_USAGE = `Through RabbitMQ or Kafka (--broker <url>, or EVENTS_BROKER_URL without --outbox):
  dead-letters --service S [--json]       list the dead letters in S's queue (or topic) S.dlq (left in place)
  replay <eventId>... --service S         move them back to S's queue, attempts reset
  replay --all --service S
  --service <name>  the receiving service (default: $EVENTS_SERVICE_NAME)
  --prefix <p>      its queue prefix (default: $EVENTS_BROKER_PREFIX)
`;

const OPTIONS = {
  broker: { type: 'string' },
  service: { type: 'string' },
  prefix: { type: 'string' },
  json: { type: 'boolean' },
  all: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface BrokerIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** Whether this command line is about a broker's dead letters rather than an outbox file. */
export function isBrokerCommand(argv: readonly string[], env: NodeJS.ProcessEnv): boolean {
  if (argv.some((arg) => arg === '--broker' || arg.startsWith('--broker='))) return true;
  if (argv.some((arg) => arg === '--outbox' || arg.startsWith('--outbox='))) return false;
  return nonEmpty(env.EVENTS_BROKER_URL) !== undefined && nonEmpty(env.EVENTS_OUTBOX_PATH) === undefined;
}

export async function runBrokerCommand(argv: readonly string[], env: NodeJS.ProcessEnv, io: BrokerIo, now = Date.now()): Promise<number> {
  try {
    return await run(argv, env, io, now);
  } catch (error) {
    if (error instanceof UsageError || error instanceof ConfigError) {
      io.err(`events-library: ${escapeOutput(error.message)}\n`);
      return 2;
    }
    io.err(`events-library: ${escapeOutput((error as Error)?.message ?? String(error))}\n`);
    return 1;
  }
}

class UsageError extends Error {}

async function run(argv: readonly string[], env: NodeJS.ProcessEnv, io: BrokerIo, now: number): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  const [command, ...args] = positionals;
  if (values.help || command === undefined || command === 'help') {
    io.out(BROKER_USAGE);
    return 0;
  }
  if (command !== 'dead-letters' && command !== 'replay') {
    throw new UsageError(`"${command}" is not available with --broker: use dead-letters or replay`);
  }
  const broker = values.broker ?? nonEmpty(env.EVENTS_BROKER_URL);
  if (broker === undefined) throw new UsageError('which broker? set EVENTS_BROKER_URL or pass --broker <url>');
  const service = values.service ?? nonEmpty(env.EVENTS_SERVICE_NAME);
  if (service === undefined) throw new UsageError('which service? set EVENTS_SERVICE_NAME or pass --service <name>');
  const options: BrokerAdminOptions = { broker, service, prefix: values.prefix ?? nonEmpty(env.EVENTS_BROKER_PREFIX) ?? '' };
  const json = values.json === true;

  if (command === 'dead-letters') {
    if (args.length > 0 || values.all) throw new UsageError('dead-letters takes no arguments');
    const letters = await listBrokerDeadLetters(options);
    io.out(json ? `${safeJson(letters, 2)}\n` : format(letters, service, now));
    return 0;
  }
  if (values.all && args.length > 0) throw new UsageError('replay takes event ids or --all, not both');
  if (!values.all && args.length === 0) throw new UsageError('replay needs event ids, or --all');
  const count = await replayBrokerDeadLetters(options, values.all ? 'all' : { eventIds: args });
  if (json) io.out(`${safeJson({ replayed: count })}\n`);
  else io.out(count === 0 ? 'replayed 0 dead letters: none matched\n' : `replayed ${count} dead letter${count === 1 ? '' : 's'} to the queue of ${escapeField(service)}\n`);
  return 0;
}

function format(letters: readonly BrokerDeadLetter[], service: string, now: number): string {
  if (letters.length === 0) return `no dead letters for ${escapeField(service)}\n`;
  const rows = letters.map((d) => [
    d.eventId ?? '-',
    d.type ?? '-',
    d.source ?? '-',
    d.reason ?? '-',
    d.attempts === undefined ? '-' : String(d.attempts),
    d.deadAt === undefined ? '-' : `${new Date(d.deadAt).toISOString().slice(0, 19)}Z (${Math.max(0, Math.round((now - d.deadAt) / 1000))}s ago)`,
    escapeField(d.error ?? '-').replace(/\s+/g, ' ').slice(0, 72),
  ].map(escapeField));
  const header = ['event id', 'type', 'source', 'reason', 'attempts', 'dead since', 'error'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { asyncapi } from '../default-bus.js';
import { ConfigError } from '../errors/index.js';
import type { AsyncApiDocument } from './asyncapi.js';
import { type ContractCheck, checkContracts, formatFinding } from './check.js';
import { setDescribeOnly } from './describe-only.js';
import { isObject } from './json-document.js';

/**
 * `events-library asyncapi --module <file>`: loads the module with every bus in describe-only
 * mode (no URL or secret resolved, nothing opened or sent) and returns the document of the bus
 * it exports, else of the default bus it declared and subscribed on.
 */
export function describeModule(file: string, cwd = process.cwd()): AsyncApiDocument {
  const path = resolve(cwd, file);
  if (!existsSync(path)) throw new ConfigError(`no module at ${path}`);
  setDescribeOnly(true);
  try {
    // The service's own module, by path (a CommonJS build, as `tsc` writes it).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const loaded = require(path) as unknown;
    const exported = [loaded, (loaded as { default?: unknown } | undefined)?.default, ...(isObject(loaded) ? Object.values(loaded) : [])];
    const bus = exported.find((value): value is { asyncapi(): AsyncApiDocument } => isObject(value) && typeof value.asyncapi === 'function');
    const document = bus ? bus.asyncapi() : asyncapi();
    if (Object.keys(document.channels).length === 0) {
      throw new ConfigError(`${file} declares no event and subscribes to none, on the default bus or on a bus it exports`);
    }
    return document;
  } finally {
    setDescribeOnly(false);
  }
}

/** A service's document, read from a file. */
export interface DocumentFile {
  file: string;
  document: unknown;
}

/** Reads an AsyncAPI 3 document (JSON); a missing file or another kind of content is a ConfigError (usage). */
export function readDocument(file: string): DocumentFile {
  let document: unknown;
  try {
    document = JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new ConfigError(`${file}: ${(cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not a JSON document (${(cause as Error).message})`}`, { cause });
  }
  if (!isObject(document) || typeof document.asyncapi !== 'string' || !document.asyncapi.startsWith('3.')) {
    throw new ConfigError(`${file}: not an AsyncAPI 3 document (its "asyncapi" field must be 3.x; "events-library asyncapi" writes one)`);
  }
  return { file, document };
}

/** Every `*.json` of a folder, in name order. */
export function readFolder(dir: string): DocumentFile[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ConfigError(`${dir}: no such folder`);
  const files = readdirSync(dir).filter((name) => name.endsWith('.json')).sort();
  if (files.length === 0) throw new ConfigError(`${dir} holds no service documents (*.json)`);
  return files.map((name) => readDocument(join(dir, name)));
}

/** Each producer against each consumer: the first against the second, or (`all`) every ordered pair of distinct documents. */
export function checkDocuments(documents: readonly DocumentFile[], all: boolean): ContractCheck[] {
  const pairs = all ? documents.flatMap((p, i) => documents.filter((_, j) => j !== i).map((c) => [p, c] as const)) : [[documents[0]!, documents[1]!] as const];
  return pairs.map(([producer, consumer]) => {
    try {
      return checkContracts(producer.document, consumer.document);
    } catch (cause) {
      throw new ConfigError(`${producer.file} against ${consumer.file}: ${(cause as Error).message}`, { cause });
    }
  });
}

/** What `check` prints: each finding on a line, each pair that fits, and a verdict. */
export function formatChecks(checks: readonly ContractCheck[]): string {
  const met = checks.filter((check) => check.types.length > 0);
  if (met.length === 0) return 'nothing to check: no service receives a type another one sends\n';
  const lines = met.flatMap((check) =>
    check.findings.length === 0 ? [`ok: ${check.producer} → ${check.consumer}: ${check.types.join(', ')}`] : check.findings.map(formatFinding),
  );
  const findings = met.flatMap((check) => check.findings);
  const unproven = findings.filter((finding) => finding.cannotProve).length;
  lines.push(
    findings.length === 0
      ? `compatible: ${met.length} pair${met.length === 1 ? '' : 's'} of services checked`
      : `not compatible: ${findings.length} finding${findings.length === 1 ? '' : 's'}${unproven > 0 ? ` (${unproven} cannot prove)` : ''}`,
  );
  return `${lines.join('\n')}\n`;
}

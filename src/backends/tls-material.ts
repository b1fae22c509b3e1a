import { readFileSync } from 'node:fs';
import { type ConnectionOptions, createSecureContext } from 'node:tls';
import type { Logger } from 'winston';
import { DEFAULTS } from '../defaults.js';
import { ConfigError } from '../errors/index.js';

/** PEM text: a string, or the bytes of a file. */
export type Pem = string | Buffer;

/**
 * TLS of the connections to HTTPS targets (and to an `amqps://` or `kafkas://` broker): a private
 * CA, and a client certificate for mutual TLS. Each file variable names a PEM file, read again
 * when it changes (certificate rotation without a restart).
 * @example { ca: readFileSync('/etc/pki/company-ca.pem'), cert: readFileSync('svc.crt'), key: readFileSync('svc.key') }
 */
export interface TlsOptions {
  /**
   * CA certificate(s) that sign the servers' certificates; they replace Node's public CAs for
   * these connections. Env: `EVENTS_TLS_CA_FILE`, per target `EVENTS_SERVICE_<NAME>_TLS_CA_FILE`.
   */
  ca?: Pem | readonly Pem[];
  /** Client certificate (chain) presented to servers that ask for one. Env: `EVENTS_TLS_CERT_FILE`, `EVENTS_SERVICE_<NAME>_TLS_CERT_FILE`. */
  cert?: Pem;
  /** The private key of `cert`. Env: `EVENTS_TLS_KEY_FILE`, `EVENTS_SERVICE_<NAME>_TLS_KEY_FILE`. */
  key?: Pem;
  /** Passphrase of an encrypted `key`. */
  passphrase?: string;
  /** Name the server's certificate must hold (and SNI), when it differs from the URL's host. @default the URL's host */
  servername?: string;
}

type PemField = 'ca' | 'cert' | 'key';
const PEM_FIELDS: readonly PemField[] = ['ca', 'cert', 'key'];

/** Where one PEM comes from: the options, or a file named by an environment variable. */
type PemSource = { pem: Pem | readonly Pem[]; where: string } | { file: string; where: string };

/** One level of TLS settings (the default for every target, or one target's own), not read yet. */
export type TlsParts = Partial<Record<PemField, PemSource>> & { passphrase?: string; servername?: string };

/**
 * One level of settings: `given` (at `where`, e.g. `services.payments.tls`) over the files named by
 * `<prefix>_TLS_CA_FILE`, `_TLS_CERT_FILE`, `_TLS_KEY_FILE`.
 */
export function tlsParts(given: TlsOptions | undefined, env: Readonly<Record<string, string | undefined>>, prefix: string, where: string): TlsParts {
  if (given !== undefined && (given === null || typeof given !== 'object')) throw new ConfigError(`${where} must be an object { ca, cert, key, … }`);
  const parts: TlsParts = {};
  for (const field of PEM_FIELDS) {
    const variable = `${prefix}_TLS_${field.toUpperCase()}_FILE`;
    const file = env[variable]?.trim();
    if (given?.[field] !== undefined) parts[field] = { pem: given[field], where: `${where}.${field}` };
    else if (file) parts[field] = { file, where: variable };
  }
  if (given?.passphrase !== undefined) parts.passphrase = given.passphrase;
  if (given?.servername !== undefined) parts.servername = given.servername;
  return parts;
}

/** A target's own settings over the default ones, field by field; the client certificate and its key come from the same level. */
export function mergeTlsParts(own: TlsParts, fallback: TlsParts): TlsParts {
  const identity = own.cert || own.key ? own : fallback;
  const { ca = fallback.ca, servername = fallback.servername } = own;
  return { ca, servername, cert: identity.cert, key: identity.key, passphrase: identity.passphrase };
}

/**
 * The TLS options of one level of settings, with its files read again when they change: checked
 * at most every `DEFAULTS.tls.fileCheckMs`, and before the next connection after a failed one
 * (`recheck`). A new set of files that does not hold together (a certificate written before its
 * key) is not taken: the previous one stays until it does, and a warning says why.
 */
export class TlsMaterial {
  private options: ConnectionOptions;
  private files: Map<string, Buffer>;
  private checkedAt = Date.now();
  private stale = false;
  private lastProblem: string | undefined;

  /** undefined when `parts` set nothing. Throws ConfigError naming the option or variable at fault. */
  static of(parts: TlsParts, logger: Logger): TlsMaterial | undefined {
    return Object.values(parts).some((part) => part !== undefined) ? new TlsMaterial(parts, logger) : undefined;
  }

  private constructor(
    readonly parts: TlsParts,
    private readonly logger: Logger,
  ) {
    this.files = readFiles(parts, new Map());
    this.options = build(parts, this.files);
  }

  /** The options for a new connection; a new object once the files changed (the caller builds a new agent then). */
  current(): ConnectionOptions {
    if (this.stale || Date.now() - this.checkedAt >= DEFAULTS.tls.fileCheckMs) this.reload();
    return this.options;
  }

  /** A connection failed: read the files again before the next one (a rotated CA or certificate may be there). */
  recheck(): void {
    this.stale = true;
  }

  private reload(): void {
    this.stale = false;
    this.checkedAt = Date.now();
    try {
      const files = readFiles(this.parts, this.files);
      if (files === this.files) return;
      this.options = build(this.parts, files);
      this.files = files;
      this.lastProblem = undefined;
      this.logger.info('TLS files changed; new connections use them', { files: [...files.keys()] });
    } catch (error) {
      const problem = (error as Error).message;
      if (problem !== this.lastProblem) this.logger.warn('TLS files changed but cannot be used; keeping the previous ones', { error: problem });
      this.lastProblem = problem;
    }
  }
}

/** The files of `parts`, read now: `previous` itself when none changed. Throws ConfigError. */
function readFiles(parts: TlsParts, previous: Map<string, Buffer>): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  let changed = previous.size === 0;
  for (const field of PEM_FIELDS) {
    const part = parts[field];
    if (part === undefined || !('file' in part)) continue;
    try {
      const bytes = readFileSync(part.file);
      files.set(part.file, bytes);
      changed ||= !previous.get(part.file)?.equals(bytes);
    } catch (cause) {
      throw new ConfigError(`${part.where}: cannot read ${part.file} (${(cause as NodeJS.ErrnoException).code ?? cause})`, { variable: part.where, cause });
    }
  }
  return changed ? files : previous;
}

/** The tls.connect options of `parts` with `files` read, checked. Throws ConfigError. */
function build(parts: TlsParts, files: Map<string, Buffer>): ConnectionOptions {
  const pem = (field: PemField): Pem | readonly Pem[] | undefined => {
    const part = parts[field];
    return part === undefined ? undefined : 'file' in part ? files.get(part.file) : part.pem;
  };
  const [ca, cert, key] = PEM_FIELDS.map(pem);
  const { passphrase, servername } = parts;
  for (const field of ['ca', 'cert'] as const) {
    const value = field === 'ca' ? ca : cert;
    const texts = value === undefined ? [] : Array.isArray(value) ? value : [value];
    if (texts.some((text: unknown) => !/-----BEGIN CERTIFICATE-----/.test(String(text)))) {
      throw new ConfigError(`${parts[field]!.where} must be PEM certificates (-----BEGIN CERTIFICATE-----)`, { variable: variableOf(parts[field]!.where) });
    }
  }
  if ((cert === undefined) !== (key === undefined)) {
    const missing = cert === undefined ? 'cert' : 'key';
    const given = parts[missing === 'cert' ? 'key' : 'cert']!.where;
    throw new ConfigError(`${given} is set without the client certificate's ${missing}: set both (or neither)`, { variable: variableOf(given) });
  }
  const options: ConnectionOptions = {
    ...(ca !== undefined ? { ca: ca as ConnectionOptions['ca'] } : {}),
    ...(cert !== undefined ? { cert: cert as Pem, key: key as Pem } : {}),
    ...(passphrase !== undefined ? { passphrase } : {}),
    ...(servername !== undefined ? { servername } : {}),
  };
  try {
    createSecureContext(options);
  } catch (cause) {
    const where = parts.key?.where ?? parts.ca?.where ?? 'tls';
    throw new ConfigError(`${where}: ${(cause as Error).message} (is the key the certificate's, and its passphrase right?)`, { variable: variableOf(where), cause });
  }
  return options;
}

/** The environment variable of a setting, when it came from one (`ConfigError.variable`). */
function variableOf(where: string): string | undefined {
  return where.startsWith('EVENTS_') ? where : undefined;
}

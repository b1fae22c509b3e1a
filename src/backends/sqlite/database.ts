import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { DEFAULTS } from '../../defaults.js';
import { ConfigError } from '../../errors/index.js';
import { loadPeer } from '../../optional-peer.js';

export type Database = BetterSqlite3.Database;

/** better-sqlite3, the optional peer dependency; `need` says what needs it when it is not installed. */
export function loadDriver(variable: string, need = `${variable} is set, but the optional peer dependency better-sqlite3 is not installed`): typeof BetterSqlite3 {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return loadPeer(() => require('better-sqlite3'), variable, `${need}: run npm install better-sqlite3@^12`);
}

/**
 * Opens a SQLite file with better-sqlite3, the optional peer dependency, loaded only here.
 * WAL, and `synchronous = NORMAL`: a committed transaction survives the process being killed
 * (SIGKILL included); only an OS crash or power loss can take the last commits. The automatic
 * checkpoint runs every 16384 WAL pages (64 MiB) rather than SQLite's 1000: it runs inside the
 * commit that crosses the mark, fsyncs included, so a rarer one takes most of it off the emit
 * path (bench: 3 targets 22k → 28k emits/s, p99 23 → 5 ms). The stores a service owns move their
 * checkpoints off the event loop altogether (checkpointer.ts).
 *
 * The busy timeout is short (`DEFAULTS.sqlite.busyTimeoutMs`): the driver is synchronous, so a
 * lock held by another connection would freeze the event loop for as long as it waits. Callers
 * retry failed writes later instead. Any failure to open or set up the file is a ConfigError
 * naming the path and `variable`.
 */
export function openDatabase(
  path: string,
  variable: string,
  options: { busyTimeoutMs?: number } = {},
): Database {
  const Driver = loadDriver(variable);
  let db: Database | undefined;
  try {
    const timeout = options.busyTimeoutMs ?? DEFAULTS.sqlite.busyTimeoutMs;
    db = new Driver(path, { timeout });
    switchToWal(db, Date.now() + timeout);
    db.pragma('synchronous = NORMAL');
    db.pragma(`wal_autocheckpoint = ${DEFAULTS.sqlite.inlineCheckpointPages}`);
    return db;
  } catch (cause) {
    if (db?.open) db.close();
    throw startupError(path, variable, cause);
  }
}

/**
 * `journal_mode = WAL` can answer SQLITE_BUSY at once, without the busy handler, while another
 * process is creating the same new file (instances sharing an inbox, started together): try
 * again until `deadline`. Startup only, so the short synchronous waits block nothing that runs.
 */
function switchToWal(db: Database, deadline: number): void {
  for (;;) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (error) {
      if (faultOf(error).kind !== 'locked' || Date.now() >= deadline) throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
}

/** A ConfigError that names the file, the variable, and what to do about `cause`. */
export function startupError(path: string, variable: string, cause: unknown): ConfigError {
  return new ConfigError(`${variable}: cannot use the SQLite file ${path}: ${faultOf(cause).reason}. ${faultOf(cause).hint}`, {
    variable,
    cause,
  });
}

export interface Fault {
  /** What went wrong, in words. */
  reason: string;
  /** What an operator should do. */
  hint: string;
  /** A stable key: one log line per change of it. */
  kind: 'full' | 'locked' | 'readonly' | 'corrupt' | 'io' | 'other';
}

/** Classifies a SQLite (or file system) error, with what an operator should do about it. */
export function faultOf(error: unknown): Fault {
  const code = String((error as { code?: unknown })?.code ?? '');
  const message = (error as Error)?.message ?? String(error);
  if (code.startsWith('SQLITE_FULL') || code === 'ENOSPC') {
    return { kind: 'full', reason: `disk full (${message})`, hint: 'Free disk space on the volume holding it; writes resume by themselves.' };
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return {
      kind: 'locked',
      reason: `locked by another connection (${message})`,
      hint: 'Another process holds a write lock on it (a second service on the same file, a backup, an sqlite3 shell): stop it or let it finish.',
    };
  }
  if (code.startsWith('SQLITE_READONLY') || code === 'EACCES' || code === 'EROFS' || code === 'SQLITE_PERM') {
    return { kind: 'readonly', reason: `read-only (${message})`, hint: 'Make the file and its directory writable by this process.' };
  }
  if (code.startsWith('SQLITE_CORRUPT') || code.startsWith('SQLITE_NOTADB')) {
    return {
      kind: 'corrupt',
      reason: `not a valid SQLite database (${message})`,
      hint: 'Point the variable at the right file, or restore it from a backup (move the damaged file aside first).',
    };
  }
  if (code.startsWith('SQLITE_CANTOPEN') || code === 'EISDIR' || code === 'ENOENT') {
    return { kind: 'io', reason: `cannot open it (${message})`, hint: 'Check that the path names a file (not a directory) in a directory that exists and is writable.' };
  }
  if (code.startsWith('SQLITE_IOERR')) {
    return { kind: 'io', reason: `I/O error (${message})`, hint: 'Check the disk and the file system (dmesg); restore from a backup if the file is damaged.' };
  }
  return { kind: 'other', reason: message, hint: 'Check the file and the disk.' };
}

/**
 * Makes this process the only owner of `path`: opens the sidecar `<path>-lock` (a SQLite file)
 * and holds an exclusive transaction on it for as long as the returned handle is open. The OS
 * drops the lock when the process dies, SIGKILL included, so it never goes stale. A second
 * owner fails at once with a ConfigError naming the path and `variable`.
 */
export function lockExclusive(path: string, variable: string): { release(): void } {
  const Driver = loadDriver(variable);
  checkWritable(path, variable);
  const lockPath = `${path}-lock`;
  let lock: Database | undefined;
  try {
    lock = new Driver(lockPath, { timeout: 0 });
    lock.exec('BEGIN EXCLUSIVE');
  } catch (cause) {
    if (lock?.open) lock.close();
    if (faultOf(cause).kind === 'locked') {
      throw new ConfigError(
          `${variable}: ${path} is already in use by another process (it holds ${lockPath}). ` +
            `One service process per outbox or inbox file: give each process its own ${variable}, ` +
            'or stop the other one. (The events-library CLI reads the file beside a running service; it is not refused.)',
          { variable, cause },
      );
    }
    const fault = faultOf(cause);
    throw new ConfigError(`${variable}: cannot create the lock file ${lockPath} beside ${path}: ${fault.reason}. ${fault.hint}`, {
      variable,
      cause,
    });
  }
  const held = lock;
  return {
    release: () => {
      if (held.open) held.close();
    },
  };
}

/**
 * Checks every `intervalMs` that `path` is still the file opened (same device and inode), and
 * calls `onLost` once if it was deleted or replaced: writes would go to a file nobody reads after
 * a restart. Returns a function that stops watching. The timer does not keep the process alive.
 */
export function watchIdentity(path: string, intervalMs: number, onLost: (reason: string) => void): () => void {
  let identity: { dev: number; ino: number };
  try {
    const stat = statSync(path);
    identity = { dev: stat.dev, ino: stat.ino };
  } catch {
    return () => {};
  }
  const timer = setInterval(() => {
    let reason: string | undefined;
    try {
      const stat = statSync(path);
      if (stat.dev !== identity.dev || stat.ino !== identity.ino) reason = 'the file was replaced while the service ran';
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') reason = 'the file was deleted while the service ran';
    }
    if (reason === undefined) return;
    clearInterval(timer);
    onLost(reason);
  }, intervalMs).unref();
  return () => clearInterval(timer);
}

/**
 * A service writes its file, the WAL and the lock beside it: a read-only file or directory is a
 * start-up error naming the path (SQLite would otherwise open the file read-only, silently, and
 * fail at the first write).
 */
function checkWritable(path: string, variable: string): void {
  for (const target of existsSync(path) ? [path, dirname(path)] : [dirname(path)]) {
    try {
      accessSync(target, constants.W_OK);
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      if (code !== 'EACCES' && code !== 'EROFS' && code !== 'EPERM') continue; // ENOENT & co: reported when opening
      const what = target === path ? 'the file' : 'its directory';
      throw new ConfigError(
        `${variable}: ${path} cannot be written (${what} is read-only: ${code}). Make ${target} writable by this ` +
          `process, or point ${variable} at a writable location.`,
        { variable, cause },
      );
    }
  }
}

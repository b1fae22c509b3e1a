import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { DEFAULTS } from '../../defaults.js';
import type { Database } from './database.js';

/**
 * WAL checkpoints off the event loop. SQLite's automatic checkpoint runs inside the commit that
 * crosses its mark, copying the WAL into the database file with two fsyncs, and better-sqlite3 is
 * synchronous: the event loop stood still meanwhile (the durable path's p99 emit → handler at
 * saturation: 78–81 ms then, 27–37 ms with this thread; docs/benchmarks.md, "WAL checkpoints off
 * the event loop"). Here one worker thread per process holds a connection of its own to each
 * file and runs a PASSIVE checkpoint every `DEFAULTS.sqlite.checkpointIntervalMs`: it never waits
 * for a lock and never blocks the writer, and once it has copied every frame the next commit starts
 * the WAL over.
 *
 * The worker is unref'd (it never keeps the process alive) and ends with the last file. Should it
 * fail (it cannot open a file, or dies), that file, or every file, goes back to SQLite's own
 * checkpoints (`DEFAULTS.sqlite.inlineCheckpointPages`): slower, never unbounded.
 */

/** The worker, as CommonJS source: it runs wherever the library does (tsc's output, ts-jest, tsx). */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const files = new Map();
// A lock held elsewhere is no error (PASSIVE reports it busy and copies what it can); any error
// is a fault of the file: the store's own writes meet it too, and the file goes back to SQLite's
// own checkpoints rather than failing here every second.
const checkpoint = () => {
  for (const [id, db] of files) {
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
    } catch (error) {
      files.delete(id);
      try { db.close(); } catch {}
      parentPort.postMessage({ id, failed: String(error && error.message) });
    }
  }
};
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message.open) {
    try {
      files.set(message.open.id, new Database(message.open.path, { fileMustExist: true, timeout: 1000 }));
    } catch (error) {
      parentPort.postMessage({ id: message.open.id, failed: String(error && error.message) });
    }
  } else if (message.close !== undefined) {
    const db = files.get(message.close);
    files.delete(message.close);
    try { if (db) db.close(); } catch {}
  } else if (message.exit) {
    clearInterval(timer);
    for (const db of files.values()) try { db.close(); } catch {}
    process.exit(0);
  }
});
`;

let worker: Worker | undefined;
let nextId = 0;
interface CheckpointedFile {
  /** The main connection. */
  db: Database;
  /** Told why the worker no longer checkpoints this file. */
  onFallback: (reason: string) => void;
}

/** The files checkpointed by the worker, by id. */
const files = new Map<number, CheckpointedFile>();

/** SQLite's own checkpoints again, on the file's commits, saying why. */
function checkpointInline({ db, onFallback }: CheckpointedFile, reason: string): void {
  if (!db.open) return;
  db.pragma(`wal_autocheckpoint = ${DEFAULTS.sqlite.inlineCheckpointPages}`);
  onFallback(reason);
}

function startWorker(): Worker {
  const driver = require.resolve('better-sqlite3');
  const started = new Worker(WORKER, { eval: true, workerData: { driver, intervalMs: DEFAULTS.sqlite.checkpointIntervalMs } });
  started.unref();
  started.on('message', ({ id, failed }: { id: number; failed: string }) => {
    const file = files.get(id);
    files.delete(id);
    if (file) checkpointInline(file, failed);
  });
  const gone = (error?: unknown) => {
    if (worker !== started) return;
    worker = undefined;
    const reason = error instanceof Error ? `the checkpointer thread failed: ${error.message}` : 'the checkpointer thread stopped';
    for (const file of files.values()) checkpointInline(file, reason);
    files.clear();
  };
  started.on('error', gone);
  started.on('exit', () => gone());
  return started;
}

/**
 * Checkpoints the WAL of `db` (opened on `path`) from the worker from now on, rather than in its
 * commits; `onFallback` is told if the worker cannot (SQLite's own checkpoints are back then).
 * Returns the function that stops it; call it before closing `db`.
 */
export function checkpointInBackground(db: Database, path: string, onFallback: (reason: string) => void): () => void {
  const id = ++nextId;
  db.pragma('wal_autocheckpoint = 0');
  files.set(id, { db, onFallback });
  worker ??= startWorker();
  worker.postMessage({ open: { id, path: resolve(path) } });
  return () => {
    if (!files.delete(id) || worker === undefined) return;
    worker.postMessage({ close: id });
    if (files.size > 0) return;
    worker.postMessage({ exit: true });
    worker = undefined;
  };
}

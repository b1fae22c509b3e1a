import { setTimeout as sleep } from 'node:timers/promises';
import type { PoolClient } from 'pg';
import { type PostgresDatabase, within } from './database.js';

// A statement that may have committed although its answer never came: how the PostgreSQL outbox
// sends an emit's INSERT so that a refusal means "not recorded", and how it finds out afterwards.

/**
 * A pool connection taken by `deadline` (ms since epoch), `onError` listening on it: one that
 * comes later goes back unused, so nothing is ever sent on it.
 */
export async function connectionBy(db: PostgresDatabase, onError: (error: Error) => void, deadline: number, late: () => Error): Promise<PoolClient> {
  const taking = db.checkout(onError);
  try {
    return await within(taking, deadline - Date.now(), late);
  } catch (error) {
    void taking.then(
      (client) => {
        client.off('error', onError);
        client.release();
      },
      () => {},
    );
    throw error;
  }
}

/**
 * Ends backend `pid` from another connection (`control`: the pool's may all be stuck) and waits
 * until it is gone, so that whatever it was doing can no longer change; `givenUp` stops the wait.
 * Returns the id of the transaction it had open, or null when it had written nothing (a lock wait)
 * or was done.
 */
export async function endBackend(db: PostgresDatabase, pid: number | undefined, givenUp: () => boolean): Promise<string | null> {
  if (pid === undefined) throw new Error('the connection names no backend process to end');
  const ended = await db.control<{ xid: string | null }>(
    'SELECT backend_xid::text AS xid, pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1',
    [pid],
  );
  while ((await db.control('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rows.length > 0) {
    if (givenUp()) throw new Error('given up');
    await sleep(10);
  }
  return ended.rows[0]?.xid ?? null;
}

/** Whether transaction `xid` (as `backend_xid` gives it, 32 bits) committed. */
export async function transactionCommitted(db: PostgresDatabase, xid: string): Promise<boolean> {
  // The 32-bit xid, with the epoch of the next one (it is at most 2^31 older), as txid_status takes it.
  const status = await db.control<{ status: string | null }>(
    `SELECT txid_status(CASE WHEN (n >> 32 << 32) + $1 >= n THEN (n >> 32 << 32) + $1 - 4294967296 ELSE (n >> 32 << 32) + $1 END) AS status
     FROM (SELECT txid_snapshot_xmax(txid_current_snapshot()) AS n) s`,
    [Number(xid)],
  );
  return status.rows[0]?.status === 'committed';
}

/**
 * Baseline: a transactional outbox and inbox on PostgreSQL written the way teams write one, with
 * `pg` and node:http, a schema per side per run. Sender: each emit is its own transaction, one
 * INSERT of a row per target (in an application, one more statement in the business transaction,
 * whose BEGIN and COMMIT it pays anyway); WORKERS loops each claim up to CLAIM due rows with
 * `FOR UPDATE SKIP LOCKED`, POST each one (a JSON envelope, keep-alive), delete the answered rows,
 * reschedule the others, commit, and sleep IDLE_MS when they found nothing. Receiver: per event, one transaction that inserts the event id into its
 * dedupe table (`ON CONFLICT DO NOTHING`) and runs the handler (the sink) when the row is new.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { Pool, type PoolClient } from 'pg';
import { listen, sleep, stopServer } from '../lib.js';
import { EVENT_TYPE, type E2EPayload } from './event.js';
import { dropSchema, freshSchema } from './pg-schema.js';
import { type Emitter, PG_URL, type ReceiverSide, type Sink, WINDOW } from './system.js';

/** Worker loops per sender; SKIP LOCKED is what lets them share the table. */
const WORKERS = 4;
/** Rows one worker claims per transaction. */
const CLAIM = 100;
/** A worker's sleep after a claim that found nothing (teams poll every 10 ms to 1 s). */
const IDLE_MS = 20;
/** Connections per pool: the workers', and the emits' transactions beside them. */
const SENDER_POOL = 12;
const RECEIVER_POOL = 8;

function pool(max: number): Pool {
  const created = new Pool({ connectionString: PG_URL, max, idleTimeoutMillis: 5_000 });
  created.on('error', () => undefined);
  return created;
}

async function inTransaction<T>(db: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

export async function receiver(_system: string, index: number, sink: Sink): Promise<ReceiverSide> {
  const schema = await freshSchema(`h${index}`);
  const db = pool(RECEIVER_POOL);
  await db.query(`CREATE TABLE "${schema}".inbox (event_id uuid PRIMARY KEY, received_at timestamptz NOT NULL DEFAULT now())`);
  const insert = `INSERT INTO "${schema}".inbox (event_id) VALUES ($1) ON CONFLICT DO NOTHING`;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      void (async () => {
        try {
          const event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: string; data: E2EPayload };
          await inTransaction(db, async (client) => {
            const { rowCount } = await client.query(insert, [event.id]);
            if (rowCount === 1) sink(event.data);
          });
          res.writeHead(204).end();
        } catch {
          res.writeHead(500).end();
        }
      })();
    });
  });
  const url = await listen(server);
  return {
    address: `${url}/events`,
    close: async () => {
      await stopServer(server);
      await db.end();
      await dropSchema(schema);
    },
  };
}

export async function sender(_system: string, addresses: string[]): Promise<Emitter> {
  const schema = await freshSchema('hs');
  const db = pool(SENDER_POOL);
  await db.query(
    `CREATE TABLE "${schema}".outbox (
       id bigserial PRIMARY KEY,
       event_id uuid NOT NULL,
       target int NOT NULL,
       payload jsonb NOT NULL,
       attempts int NOT NULL DEFAULT 0,
       available_at timestamptz NOT NULL DEFAULT now()
     )`,
  );
  const insert = `INSERT INTO "${schema}".outbox (event_id, target, payload) VALUES ${addresses.map((_, i) => `($1, ${i}, $2)`).join(', ')}`;
  const claim = `SELECT id, target, payload FROM "${schema}".outbox WHERE available_at <= now() ORDER BY id LIMIT ${CLAIM} FOR UPDATE SKIP LOCKED`;
  const remove = `DELETE FROM "${schema}".outbox WHERE id = ANY($1)`;
  const reschedule = `UPDATE "${schema}".outbox SET attempts = attempts + 1, available_at = now() + interval '1 second' WHERE id = ANY($1)`;
  const agent = new http.Agent({ keepAlive: true, maxSockets: WINDOW });
  const urls = addresses.map((address) => new URL(address));

  const post = (url: URL, body: string) =>
    new Promise<boolean>((resolve) => {
      const req = http.request(
        url,
        { method: 'POST', agent, timeout: 10_000, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode! >= 200 && res.statusCode! < 300));
        },
      );
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
      req.end(body);
    });

  let running = true;
  const work = async () => {
    while (running) {
      let claimed = 0;
      try {
        claimed = await inTransaction(db, async (client) => {
          const { rows } = await client.query<{ id: string; target: number; payload: unknown }>(claim);
          const answered = await Promise.all(rows.map((row) => post(urls[row.target]!, JSON.stringify(row.payload))));
          const done = rows.filter((_, i) => answered[i]).map((row) => row.id);
          const failed = rows.filter((_, i) => !answered[i]).map((row) => row.id);
          if (done.length) await client.query(remove, [done]);
          if (failed.length) await client.query(reschedule, [failed]);
          return rows.length;
        });
      } catch {
        await sleep(IDLE_MS);
      }
      if (claimed === 0) await sleep(IDLE_MS);
    }
  };
  const workers = Array.from({ length: WORKERS }, work);

  return {
    emit: (data) => {
      const eventId = randomUUID();
      const envelope = { id: eventId, type: EVENT_TYPE, source: 'bench-src', time: new Date().toISOString(), data };
      return db.query(insert, [eventId, JSON.stringify(envelope)]);
    },
    close: async () => {
      running = false;
      await Promise.all(workers);
      agent.destroy();
      await db.end();
      await dropSchema(schema);
    },
  };
}

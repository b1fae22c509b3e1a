import type * as Pg from 'pg';

/**
 * The stores' frequent statements as named prepared statements: PostgreSQL parses and plans each
 * one once per connection instead of on every call, and `pg` sends only its name and values after
 * the first time. A name belongs to one text, the same in every connection of the process.
 *
 * A prepared statement outlives a schema upgrade on the connections that hold it; when the upgrade
 * changed what it returns, PostgreSQL refuses it there on every call ("cached plan must not change
 * result type", 0A000). That text then runs unprepared in this process from then on.
 */
const names = new Map<string, string | null>();
let made = 0;

/** What runs a statement: the pool, or a client of it. */
export interface Queryable {
  query<R extends Pg.QueryResultRow>(config: Pg.QueryConfig): Promise<Pg.QueryResult<R>>;
}

/** `text` with `values`, named (prepared) when `prepare` and the text was not found stale. */
function statement(text: string, values: unknown[], prepare: boolean): Pg.QueryConfig {
  if (!prepare) return { text, values };
  let name = names.get(text);
  if (name === undefined) names.set(text, (name = `events_library_${++made}`));
  return name === null ? { text, values } : { name, text, values };
}

/** Whether `error` refused `query`'s prepared plan as stale; the text is then never prepared again here. */
function stalePlan(error: unknown, query: Pg.QueryConfig): boolean {
  if (query.name === undefined || (error as { code?: unknown })?.code !== '0A000') return false;
  names.set(query.text, null);
  return true;
}

/**
 * Runs `text` on `runner` as a prepared statement (see `statement`). Outside a transaction, a
 * stale plan is run again at once, unprepared; inside one the error stands (the transaction is
 * aborted), and the next call runs unprepared.
 */
export async function runStatement<R extends Pg.QueryResultRow>(
  runner: Queryable,
  text: string,
  values: unknown[],
  prepare: boolean,
  inTransaction = false,
): Promise<Pg.QueryResult<R>> {
  const query = statement(text, values, prepare);
  try {
    return await runner.query<R>(query);
  } catch (error) {
    if (!stalePlan(error, query) || inTransaction) throw error;
    return runner.query<R>({ text, values });
  }
}

/** A client that can quote a literal (`pg`'s Client). */
interface Quoting {
  escapeLiteral?(value: string): string;
}

/**
 * BEGIN, then `text` with `values`, in one round trip: one simple query of both, the values
 * written into the text as literals (quoted by the client's `escapeLiteral`, arrays as
 * `ARRAY[…]`; the text casts each placeholder, as `$2::text[]`). That text is not prepared. A
 * client that cannot quote takes two round trips. Resolves with the statement's result.
 */
export async function beginWith<R extends Pg.QueryResultRow>(client: Pg.ClientBase, text: string, values: unknown[]): Promise<Pg.QueryResult<R>> {
  const quoting = client as Quoting;
  if (typeof quoting.escapeLiteral !== 'function') {
    await client.query('BEGIN');
    return client.query<R>(text, values);
  }
  const literal = (value: unknown): string => {
    if (value === null || value === undefined) return 'NULL';
    if (Array.isArray(value)) return `ARRAY[${value.map(literal).join(', ')}]`;
    return quoting.escapeLiteral!(String(value));
  };
  const inlined = text.replace(/\$(\d+)/g, (_, n: string) => literal(values[Number(n) - 1]));
  const results = (await client.query(`BEGIN;\n${inlined}`)) as unknown as Array<Pg.QueryResult<R>>;
  return results[1]!;
}

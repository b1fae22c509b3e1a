/**
 * The CLI pointed at a file that is not an outbox refuses it (exit 2, naming the path and what
 * was expected) and leaves it byte-for-byte as it was: no table added, still in DELETE journal
 * mode, no -wal/-shm file. Real SQLite files in a temp dir, the CLI as a real child process.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { ConfigError, discardDeadLetters, inspectOutbox, listDeadLetters, replayDeadLetters } from '../../src/index.js';
import { runScript } from '../helpers/child.js';
import { tempDir, type TempDir } from '../helpers/temp-dir.js';

const cli = (args: string[]) => runScript(['src/cli.ts', ...args]);

const COMMANDS = [['status'], ['status', '--json'], ['dead-letters'], ['dead-letters', '--json'], ['replay', '--all'], ['replay', '1']];

let dir: TempDir;

beforeAll(() => {
  dir = tempDir('cli-foreign');
});

afterAll(() => dir.remove());

/** A SQLite file of some other application, in SQLite's default DELETE journal mode. */
function foreignDatabase(name: string, schema: string): string {
  const path = dir.file(name);
  const db = new Database(path);
  db.exec(schema);
  db.close();
  return path;
}

interface Snapshot {
  bytes: Buffer;
  files: string[];
}

function snapshot(path: string): Snapshot {
  return { bytes: readFileSync(path), files: readdirSync(dir.path).sort() };
}

function expectUnchanged(path: string, before: Snapshot, tables: string[]): void {
  const after = snapshot(path);
  expect(after.files).toEqual(before.files);
  for (const suffix of ['-wal', '-shm', '-journal']) expect(existsSync(`${path}${suffix}`)).toBe(false);
  expect(after.bytes.equals(before.bytes)).toBe(true);
  const db = new Database(path, { readonly: true });
  try {
    expect(db.pragma('journal_mode', { simple: true })).toBe('delete');
    const names = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    expect(names).toEqual(tables);
  } finally {
    db.close();
  }
}

describe('the CLI refuses a file that is not an outbox, and leaves it untouched', () => {
  it('another application\'s SQLite database: every command exits 2, the file is byte-for-byte the same', async () => {
    const path = foreignDatabase('app.db', "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT); INSERT INTO users (email) VALUES ('ada@example.com');");
    const before = snapshot(path);
    for (const args of COMMANDS) {
      const { code, stdout, stderr } = await cli([...args, '--outbox', path]);
      expect({ args, code, stdout }).toEqual({ args, code: 2, stdout: '' });
      expect(stderr).toContain(`${path} is not an events-library outbox`);
      expect(stderr).toContain('it has no table outbox, table dead_letters');
      expectUnchanged(path, before, ['users']);
    }
  }, 60_000);

  it('a database with an `outbox` table of another shape is refused too', async () => {
    const path = foreignDatabase('lookalike.db', 'CREATE TABLE outbox (id INTEGER PRIMARY KEY, payload TEXT); CREATE TABLE dead_letters (id INTEGER PRIMARY KEY);');
    const before = snapshot(path);
    const { code, stderr } = await cli(['replay', '--all', '--outbox', path]);
    expect(code).toBe(2);
    expect(stderr).toContain('it has no column outbox.event_id');
    expectUnchanged(path, before, ['dead_letters', 'outbox']);
  }, 30_000);

  it('a file that is not SQLite at all is refused, naming the path, and not modified', async () => {
    const path = dir.file('notes.txt');
    writeFileSync(path, 'not a database, just some notes\n'.repeat(200));
    const before = readFileSync(path);
    const { code, stderr } = await cli(['status', '--outbox', path]);
    expect(code).toBe(2);
    expect(stderr).toContain(`${path} is not an events-library outbox`);
    expect(stderr).toContain('it is not an SQLite database');
    expect(readFileSync(path).equals(before)).toBe(true);
    expect(readdirSync(dir.path).filter((name) => name.startsWith('notes.txt'))).toEqual(['notes.txt']);
  }, 30_000);

  it('the exported operator functions refuse it the same way (ConfigError naming EVENTS_OUTBOX_PATH)', async () => {
    const path = foreignDatabase('other.db', 'CREATE TABLE accounts (id INTEGER PRIMARY KEY);');
    const before = snapshot(path);
    const location = { outbox: path };
    for (const call of [inspectOutbox(location), listDeadLetters(location), replayDeadLetters(location, 'all'), discardDeadLetters(location, 'all')]) {
      const caught: unknown = await call.then(() => undefined, (error: unknown) => error);
      expect(caught).toBeInstanceOf(ConfigError);
      expect((caught as ConfigError).variable).toBe('EVENTS_OUTBOX_PATH');
      expect((caught as ConfigError).message).toContain(`${path} is not an events-library outbox`);
    }
    expectUnchanged(path, before, ['accounts']);
  });
});

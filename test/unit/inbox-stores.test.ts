import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'winston';
import { eventKey, type InboxStore } from '../../src/receive/inbox-store.js';
import { MemoryInbox } from '../../src/backends/memory/inbox.js';
import { SqliteInbox } from '../../src/backends/sqlite/inbox.js';
import { inboxStoreContract, markDone, markHandler, stateOf } from '../helpers/inbox-contract.js';

const DAY = 24 * 60 * 60 * 1000;

let dir: string;
let fileCounter = 0;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'events-inbox-test-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});
const tempFile = () => path.join(dir, `inbox-${++fileCounter}.db`);

describe('eventKey', () => {
  test('keys an event by source and id, so the same id from two sources is two events', () => {
    expect(eventKey('users', 'e1')).not.toBe(eventKey('orders', 'e1'));
    expect(eventKey('users', 'e1')).toBe(eventKey('users', 'e1'));
    expect(eventKey('a', 'b:c')).not.toBe(eventKey('a:b', 'c'));
  });
});

// The contract every inbox store keeps (PostgreSQL runs it too: test/postgres/inbox.test.ts).
describe.each<[string, () => InboxStore]>([
  ['MemoryInbox', () => new MemoryInbox(1000)],
  ['SqliteInbox', () => new SqliteInbox(tempFile(), 7 * DAY)],
])('%s (the inbox store contract)', (_name, open) => {
  inboxStoreContract(open);
});

describe('MemoryInbox', () => {
  test('is not durable', () => {
    expect(new MemoryInbox(1).durable).toBe(false);
  });

  test('remembers at most maxEntries events, forgetting the oldest first', async () => {
    const inbox = new MemoryInbox(3);
    for (const id of ['e1', 'e2', 'e3']) await markDone(inbox, eventKey('s', id));
    await markHandler(inbox, eventKey('s', 'e4'), 'h');
    expect(await stateOf(inbox, eventKey('s', 'e1'))).toBeUndefined();
    expect(await stateOf(inbox, eventKey('s', 'e2'))).toBe(true);
    expect(await stateOf(inbox, eventKey('s', 'e4'))).toEqual(new Set(['h']));
    await markDone(inbox, eventKey('s', 'e5'));
    expect(await stateOf(inbox, eventKey('s', 'e2'))).toBeUndefined();
    expect(await stateOf(inbox, eventKey('s', 'e3'))).toBe(true);
  });

  test('more handlers of a remembered event do not push other events out', async () => {
    const inbox = new MemoryInbox(2);
    await markHandler(inbox, eventKey('s', 'e1'), 'h1');
    await markDone(inbox, eventKey('s', 'e2'));
    await markHandler(inbox, eventKey('s', 'e1'), 'h2');
    await markHandler(inbox, eventKey('s', 'e1'), 'h3');
    expect(await stateOf(inbox, eventKey('s', 'e1'))).toEqual(new Set(['h1', 'h2', 'h3']));
    expect(await stateOf(inbox, eventKey('s', 'e2'))).toBe(true);
  });

  test('at scale: an event marked done after its handlers is as new as its done mark; the oldest go first, and forgetsBefore follows', async () => {
    const N = 5_000;
    const inbox = new MemoryInbox(N);
    const key = (i: number) => eventKey('s', `e${i}`);
    // Each event: a handler's mark, then done (as the receiver records them), many times over the bound.
    for (let i = 0; i < 4 * N; i++) {
      await markHandler(inbox, key(i), 'h');
      if (i >= 1) await markDone(inbox, key(i - 1));
    }
    // The newest N are remembered (the last one still with its handler's mark only), every older one forgotten.
    expect(await stateOf(inbox, key(4 * N - 1))).toEqual(new Set(['h']));
    expect(await stateOf(inbox, key(4 * N - 2))).toBe(true);
    expect(await stateOf(inbox, key(3 * N))).toBe(true);
    expect(await stateOf(inbox, key(3 * N - 1))).toBeUndefined();
    expect(await stateOf(inbox, key(0))).toBeUndefined();
    // An early event marked done again is the newest: the next eviction takes the oldest other.
    await markDone(inbox, key(3 * N));
    await markDone(inbox, key(4 * N));
    expect(await stateOf(inbox, key(3 * N))).toBe(true);
    expect(await stateOf(inbox, key(3 * N + 1))).toBeUndefined();
    expect(inbox.forgetsBefore()).toBeGreaterThan(0);
  });
});

describe('SqliteInbox', () => {
  test('is durable', async () => {
    const inbox = new SqliteInbox(tempFile(), DAY);
    expect(inbox.durable).toBe(true);
    await inbox.close();
  });

  test('survives close and reopen (a restart does not rerun handlers)', async () => {
    const file = tempFile();
    const first = new SqliteInbox(file, 7 * DAY);
    await markDone(first, eventKey('users', 'done'));
    await markHandler(first, eventKey('users', 'partial'), 'h1');
    await first.close();

    const second = new SqliteInbox(file, 7 * DAY);
    try {
      expect(await stateOf(second, eventKey('users', 'done'))).toBe(true);
      expect(await stateOf(second, eventKey('users', 'partial'))).toEqual(new Set(['h1']));
      expect(await stateOf(second, eventKey('users', 'never'))).toBeUndefined();
    } finally {
      await second.close();
    }
  });

  test('forgets ids older than retentionMs, remembers younger ones', async () => {
    const file = tempFile();
    const first = new SqliteInbox(file, 7 * DAY);
    const markedAt = Date.now();
    await markDone(first, eventKey('users', 'e1'));
    await first.close();

    const now = jest.spyOn(Date, 'now');
    try {
      now.mockReturnValue(markedAt + 6 * DAY);
      const within = new SqliteInbox(file, 7 * DAY);
      expect(await stateOf(within, eventKey('users', 'e1'))).toBe(true);
      await within.close();

      now.mockReturnValue(markedAt + 8 * DAY);
      const after = new SqliteInbox(file, 7 * DAY);
      expect(await stateOf(after, eventKey('users', 'e1'))).toBeUndefined();
      await after.close();
    } finally {
      now.mockRestore();
    }
  });

  test('a file that cannot be opened is a ConfigError naming EVENTS_INBOX_PATH', () => {
    expect(() => new SqliteInbox(path.join(dir, 'missing-dir', 'inbox.db'), DAY)).toThrow(
      expect.objectContaining({ name: 'ConfigError', variable: 'EVENTS_INBOX_PATH' }),
    );
  });

  test('instances on one host may share the file: what one records, the other sees (dedupe across instances)', async () => {
    const file = tempFile();
    const first = new SqliteInbox(file, DAY);
    const second = new SqliteInbox(file, DAY);
    try {
      await markHandler(first, 'k', 'h1');
      expect(await stateOf(second, 'k')).toEqual(new Set(['h1']));
      await markDone(second, 'k');
      expect(await stateOf(first, 'k')).toBe(true);
    } finally {
      await first.close();
      await second.close();
    }
  });

  test('a file that is not a database is a ConfigError naming the path and EVENTS_INBOX_PATH', () => {
    const file = tempFile();
    fs.writeFileSync(file, 'not a database '.repeat(100));
    expect(() => new SqliteInbox(file, DAY)).toThrow(
      expect.objectContaining({ name: 'ConfigError', variable: 'EVENTS_INBOX_PATH', message: expect.stringContaining(file) }),
    );
  });

  test('a prune that cannot write (the file locked by another connection) is logged with what to do, never thrown', async () => {
    const file = tempFile();
    await new SqliteInbox(file, DAY).close();
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    const logger = { error: jest.fn(), info: jest.fn(), warn: jest.fn(), debug: jest.fn() };
    try {
      const inbox = new SqliteInbox(file, DAY, logger as unknown as Logger);
      expect(logger.error).toHaveBeenCalledTimes(1);
      expect(logger.error.mock.calls[0]![1]).toMatchObject({ path: file, hint: expect.stringContaining('write lock') });
      expect(await stateOf(inbox, eventKey('users', 'e1'))).toBeUndefined(); // reads still work
      await inbox.close();
    } finally {
      other.exec('COMMIT');
      other.close();
    }
  });

  test('an inbox file deleted while the service runs is said loudly, at error level', async () => {
    const file = tempFile();
    const logger = { error: jest.fn(), info: jest.fn(), warn: jest.fn(), debug: jest.fn() };
    const inbox = new SqliteInbox(file, DAY, logger as unknown as Logger, { fileCheckIntervalMs: 10 });
    try {
      for (const suffix of ['', '-wal', '-shm']) fs.rmSync(file + suffix, { force: true });
      const deadline = Date.now() + 5_000;
      while (logger.error.mock.calls.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(logger.error).toHaveBeenCalledTimes(1);
      expect(logger.error.mock.calls[0]![0]).toMatch(/inbox file deleted or replaced/);
      expect(logger.error.mock.calls[0]![1]).toMatchObject({ path: file, error: expect.stringContaining('deleted') });
    } finally {
      await inbox.close();
    }
  });
});

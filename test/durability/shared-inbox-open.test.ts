/**
 * Instances behind a broker may share one SQLite inbox file. Started together on a new file,
 * every one of them must open it: creating the file (WAL switch, schema) waits for the other
 * instances' setup instead of failing fast as request-path statements do.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const FIXTURE = join(__dirname, '..', 'fixtures', 'open-shared-inbox.ts');
const INSTANCES = 4;
const ROUNDS = 6;

jest.setTimeout(60_000);

function start(path: string, at: number): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['-r', 'tsx/cjs', FIXTURE, path, String(at)], (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

test(`${INSTANCES} instances starting at once on a new shared inbox file all open it (${ROUNDS} rounds)`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'shared-inbox-'));
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const path = join(dir, `inbox-${round}.db`);
      // Far enough ahead for every child to have loaded the library.
      const at = Date.now() + 2_500;
      const results = await Promise.all(Array.from({ length: INSTANCES }, () => start(path, at)));
      for (const result of results) expect(result).toEqual({ code: 0, out: 'opened\n' });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

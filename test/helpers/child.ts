import { spawn } from 'node:child_process';
import path from 'node:path';

export interface ChildResult {
  /** Exit code, or null when it had to be killed. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** ms from spawn to exit. */
  elapsedMs: number;
}

export interface RunOptions {
  /** SIGKILL the process after this long (code null). @default 20000 */
  killAfterMs?: number;
}

const ROOT = path.resolve(__dirname, '../..');

/**
 * Runs `node -r tsx/cjs …args` (a TypeScript script and its arguments, paths relative to the
 * repository root) in its own process, with exactly `env` added to a copy of the parent's
 * environment without its EVENTS_* variables. Kills it after `killAfterMs` (code null): a process
 * that does not exit by itself fails the test instead of hanging it.
 */
export function runScript(args: string[], env: Record<string, string> = {}, options: RunOptions = {}): Promise<ChildResult> {
  const { killAfterMs = 20_000 } = options;
  const base: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('EVENTS_')) base[name] = value;
  const startedAt = Date.now();
  const child = spawn(process.execPath, ['-r', 'tsx/cjs', ...args], {
    cwd: ROOT,
    env: { ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr, elapsedMs: Date.now() - startedAt });
    });
  });
}

/** Runs a fixture of test/fixtures (see runScript). */
export function runFixture(fixture: string, env: Record<string, string>, options: RunOptions = {}): Promise<ChildResult> {
  return runScript([path.join(ROOT, 'test/fixtures', fixture)], env, options);
}

/** The JSON log lines a child wrote on stdout (other lines skipped). */
export function jsonLines(output: string): Array<Record<string, unknown>> {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

export interface ChildResult {
  /** Exit code, or null when it had to be killed. */
  code: number | null;
  /** The signal that ended the process, if a signal did. */
  signal: NodeJS.Signals | null;
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
  return startScript(args, env, options).result;
}

/** A child process started by startScript, still running. */
export interface RunningScript {
  child: ChildProcess;
  /** Resolves when it has exited. */
  result: Promise<ChildResult>;
  /** Resolves with the first stdout line matching `pattern` (rejects if the process exits first). */
  line(pattern: RegExp): Promise<string>;
}

/** Like runScript, but hands back the running child (to signal it) and its stdout lines as they come. */
export function startScript(args: string[], env: Record<string, string> = {}, options: RunOptions = {}): RunningScript {
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
  const waiting: Array<{ pattern: RegExp; resolve: (line: string) => void }> = [];
  const matchLines = () => {
    for (const w of [...waiting]) {
      const found = stdout.split('\n').find((l) => w.pattern.test(l));
      if (found !== undefined) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve(found);
      }
    }
  };
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    matchLines();
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  const result = new Promise<ChildResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr, elapsedMs: Date.now() - startedAt });
    });
  });
  const line = (pattern: RegExp) =>
    new Promise<string>((resolve, reject) => {
      waiting.push({ pattern, resolve });
      matchLines();
      void result.then((r) => reject(new Error(`the process exited (${r.code ?? r.signal}) before printing ${pattern}\n${r.stderr}`)));
    });
  return { child, result, line };
}

/** Starts a fixture of test/fixtures (see startScript). */
export function startFixture(fixture: string, env: Record<string, string>, options: RunOptions = {}): RunningScript {
  return startScript([path.join(ROOT, 'test/fixtures', fixture)], env, options);
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

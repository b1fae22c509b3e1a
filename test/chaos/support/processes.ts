// Child processes for the chaos test: TypeScript scripts run by node with tsx's require hook.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

const TSX = require.resolve('tsx/cjs');

/** A script in this directory, run as a child process, that can be SIGKILLed and started again. */
export class ScriptProcess {
  private static readonly all = new Set<ScriptProcess>();
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private stderrTail = '';
  /** Every pid this script ran as, and which of them were SIGKILLed. */
  readonly pids: number[] = [];
  readonly killedPids = new Set<number>();
  starts = 0;

  constructor(
    readonly name: string,
    private readonly script: string,
    private env: Record<string, string>,
  ) {}

  /** Starts the script and resolves with the first stdout line matching `ready`. */
  start(ready: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> {
    if (this.child) throw new Error(`${this.name} is already running`);
    const child = spawn(process.execPath, ['--require', TSX, join(__dirname, this.script)], {
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.starts += 1;
    if (child.pid !== undefined) this.pids.push(child.pid);
    ScriptProcess.all.add(this);
    this.exited = new Promise((resolve) =>
      child.once('exit', () => {
        ScriptProcess.all.delete(this);
        resolve();
      }),
    );
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-4000);
    });
    return new Promise((resolve, reject) => {
      let buffered = '';
      const timer = setTimeout(() => fail(new Error(`${this.name} not ready after ${timeoutMs} ms`)), timeoutMs);
      const fail = (error: Error) => {
        clearTimeout(timer);
        child.off('exit', onExit);
        reject(new Error(`${error.message}\n${this.name} stderr: ${this.stderrTail}`));
      };
      const onExit = (code: number | null, signal: string | null) =>
        fail(new Error(`${this.name} exited (${code ?? signal}) before it was ready`));
      child.once('exit', onExit);
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        buffered += chunk;
        const match = buffered.split('\n').slice(0, -1).map((line) => ready.exec(line)).find((m) => m !== null);
        if (match) {
          clearTimeout(timer);
          child.off('exit', onExit);
          resolve(match);
        }
      });
    });
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** SIGKILL, and wait until the process is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    if (child.pid !== undefined) this.killedPids.add(child.pid);
    child.kill('SIGKILL');
    await this.exited;
    this.child = undefined;
  }

  setEnv(env: Record<string, string>): void {
    this.env = { ...this.env, ...env };
  }

  stderr(): string {
    return this.stderrTail;
  }

  /** SIGKILLs every script process still running (for afterAll, failure or not). */
  static async killAll(): Promise<void> {
    await Promise.all([...ScriptProcess.all].map((p) => p.kill()));
  }
}

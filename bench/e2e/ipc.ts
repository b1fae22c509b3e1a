/**
 * Request/answer over a child process's IPC channel, matched by id, so the orchestrator can ask
 * several things of one child at once (the backlog poll runs beside the window's snapshots).
 */
import type { ChildProcess } from 'node:child_process';
import { fork } from 'node:child_process';
import { join } from 'node:path';

interface Request {
  id: number;
  op: string;
  args?: unknown;
}

interface Answer {
  id: number;
  result?: unknown;
  error?: string;
}

export type Handlers = Record<string, (args: never) => unknown>;

/** In the child: answers each request with its handler's result; exits when the parent goes. */
export function serve(handlers: Handlers): void {
  process.on('message', (message: Request) => {
    void (async () => {
      const handler = handlers[message.op] as ((args: unknown) => unknown) | undefined;
      try {
        if (!handler) throw new Error(`unknown op ${message.op}`);
        const result = await handler(message.args);
        process.send!({ id: message.id, result } satisfies Answer);
      } catch (error) {
        process.send!({ id: message.id, error: error instanceof Error ? (error.stack ?? error.message) : String(error) } satisfies Answer);
      }
    })();
  });
  process.on('disconnect', () => process.exit(0));
}

/** In the parent: a child running `file` (TypeScript, through tsx) and the requests pending on it. */
export class Peer {
  private readonly child: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor(file: string, args: string[] = []) {
    this.child = fork(join(__dirname, file), args, {
      // tsx for both require and import(): the systems' modules are loaded on first use.
      // BENCH_CHILD_PROF=<dir> writes a CPU profile of each child there (as bench/lib.ts forkTs).
      execArgv: [...(process.env.BENCH_CHILD_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CHILD_PROF}`] : []), '--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (answer: Answer) => {
      const waiter = this.pending.get(answer.id);
      this.pending.delete(answer.id);
      if (answer.error !== undefined) waiter?.reject(new Error(answer.error));
      else waiter?.resolve(answer.result);
    });
    this.child.on('exit', (code) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`${file} exited (${code})`));
      this.pending.clear();
    });
  }

  call<T>(op: string, args?: unknown): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, op, args } satisfies Request);
    });
  }

  /** Ends the child (it exits on disconnect). */
  close(): void {
    if (this.child.connected) this.child.disconnect();
  }
}

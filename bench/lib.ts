/** Shared pieces of the benchmarks: the event, loggers, statistics, child processes, tables. */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { Session } from 'node:inspector/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import winston from 'winston';

export const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
export const EVENT_TYPE = 'user-created';

/** Six fields, as in the design's ajv figure. */
export const SCHEMA = {
  type: 'object',
  properties: {
    user_id: { type: 'string' },
    email: { type: 'string' },
    name: { type: 'string' },
    plan: { type: 'string', enum: ['free', 'pro', 'team'] },
    seq: { type: 'integer' },
    bio: { type: 'string' },
  },
  required: ['user_id', 'email', 'name', 'plan', 'seq', 'bio'],
  additionalProperties: false,
} as const;

export interface Payload {
  user_id: string;
  email: string;
  name: string;
  plan: 'free' | 'pro' | 'team';
  seq: number;
  bio: string;
}

const PAD = (() => {
  const probe: Payload = { user_id: 'u-000000', email: 'ada@example.com', name: 'Ada Lovelace', plan: 'pro', seq: 100000, bio: '' };
  return 'x'.repeat(1024 - JSON.stringify(probe).length);
})();

/** A payload whose JSON is 1 KB (1024 bytes for 6-digit `seq`). */
export function payload(seq: number): Payload {
  return { user_id: `u-${seq}`, email: 'ada@example.com', name: 'Ada Lovelace', plan: 'pro', seq, bio: PAD };
}

/** A winston logger shaped like the library's default (timestamp + JSON), writing nowhere. */
export function discardLogger(level: string): winston.Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Stream({ stream: new Writable({ write: (_c, _e, cb) => cb() }) })],
  });
}

/** A loopback port nothing listens on (bound, then released). */
export async function deadPort(): Promise<number> {
  const server = http.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export async function listen(server: http.Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Closes `server` now, keep-alive connections included. */
export async function stopServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

/** A TypeScript file of bench/ as a child process with an IPC channel. */
export function forkTs(file: string): ChildProcess {
  return fork(join(__dirname, file), [], {
    execArgv: [...(process.env.BENCH_CHILD_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CHILD_PROF}`] : []), '--require', require.resolve('tsx/cjs')],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

/** Sends `message` and waits for the child's next message. */
export async function ask<T>(child: ChildProcess, message: unknown): Promise<T> {
  const reply = once(child, 'message') as Promise<[T]>;
  child.send(message as never);
  return (await reply)[0];
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Nearest-rank percentile of `values` (sorted in place). */
export function percentile(values: Float64Array, p: number): number {
  values.sort();
  return values[Math.min(values.length - 1, Math.ceil((p / 100) * values.length) - 1)]!;
}

/** CPU time (user + system) of this process, in µs, between calls. */
export function cpuMeter(): () => number {
  const start = process.cpuUsage();
  return () => {
    const used = process.cpuUsage(start);
    return used.user + used.system;
  };
}

export const fmt = {
  int: (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—'),
  ms: (n: number) => (Number.isFinite(n) ? (n < 10 ? n.toFixed(2) : n.toFixed(1)) : '—'),
  ratio: (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '—'),
  us: (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '—'),
};

/** A plain-text table: first column left-aligned, the others right-aligned. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/**
 * The V8 profiler's sampling interval for paced runs, in µs: its default (1 ms) aliases with a
 * loop paced by a 1 ms timer and misses most of the work (see `profile-paced.ts`).
 */
export const PACED_PROFILE_INTERVAL_US = 97;

/** Starts V8's CPU profiler on a connected `session`, sampling every `intervalUs`. */
export async function startProfiler(session: Session, intervalUs: number): Promise<void> {
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
  await session.post('Profiler.start');
}

/**
 * Starts V8's sampling heap profiler on a connected `session`, one sample per `intervalBytes`
 * allocated, counting the objects collected since (what a run's garbage costs, not what it keeps).
 */
export async function startHeapSampler(session: Session, intervalBytes: number): Promise<void> {
  await session.post('HeapProfiler.enable');
  await session.post('HeapProfiler.startSampling', { samplingInterval: intervalBytes, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
}

/** A node of a sampling heap profile (`HeapProfiler.stopSampling`, a `.heapprofile` file). */
export interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

/** The lines saying what a sampling heap profile allocated per event: the total, then the `top` functions that allocated most. */
export function heapReport(profile: { head: HeapNode }, events: number, top = 20): string[] {
  const bySite = new Map<string, number>();
  let total = 0;
  const walk = (node: HeapNode): void => {
    const { functionName, url, lineNumber } = node.callFrame;
    const site = `${functionName || '(anonymous)'} ${url.replace(/.*node_modules\//, '').replace(/.*\/(src|bench)\//, '$1/')}:${lineNumber + 1}`;
    bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
    total += node.selfSize;
    node.children.forEach(walk);
  };
  walk(profile.head);
  const sites = [...bySite].sort((a, b) => b[1] - a[1]).slice(0, top);
  return [
    `allocated: ${Math.round(total / events)} bytes per event (${(total / 1e6).toFixed(1)} MB for ${events} events)`,
    ...sites.map(([site, bytes]) => `${String(Math.round(bytes / events)).padStart(8)}  ${((100 * bytes) / total).toFixed(1).padStart(5)}%  ${site}`),
  ];
}

/**
 * CPU ms of a process or thread from its Linux `stat` file (`/proc/<pid>/stat`,
 * `/proc/self/task/<tid>/stat`): its own user + system time, and with `children` what its
 * reaped children used; clock ticks taken as 100 per second (`getconf CLK_TCK`). Undefined when
 * the file is gone (it ended) or its command is not `command`.
 */
export function procCpuMs(path: string, options: { children?: boolean; command?: string } = {}): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const close = stat.lastIndexOf(')');
  if (options.command !== undefined && stat.slice(stat.indexOf('(') + 1, close) !== options.command) return undefined;
  // utime, stime, cutime, cstime: fields 14–17 of stat(5), 11–14 after the command
  const fields = stat.slice(close + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]) + (options.children ? Number(fields[13]) + Number(fields[14]) : 0);
  return ticks * 10;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

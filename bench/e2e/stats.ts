/** Statistics of the end-to-end bench: latency samples, percentiles, CPU time. */

/** A uniform sample of at most `size` values (reservoir sampling), so long windows cost fixed memory and IPC. */
export class Reservoir {
  readonly values: number[] = [];
  private seen = 0;

  constructor(private readonly size: number) {}

  add(value: number): void {
    this.seen += 1;
    if (this.values.length < this.size) this.values.push(value);
    else {
      const slot = Math.floor(Math.random() * this.seen);
      if (slot < this.size) this.values[slot] = value;
    }
  }

  clear(): void {
    this.values.length = 0;
    this.seen = 0;
  }
}

/** Nearest-rank percentile; NaN for no samples. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Median ignoring NaN (a rep that measured nothing); NaN when nothing is left. */
export function medianOf(values: readonly number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** CPU time (user + system) this process has used, µs. */
export function cpuNow(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

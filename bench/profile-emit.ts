/**
 * One emit scenario, long enough to profile:
 *   node --cpu-prof --cpu-prof-dir=.tmp/prof --require tsx/cjs bench/profile-emit.ts [sqlite|memory] [targets] [burst|sequential] [emits]
 * then open the .cpuprofile in Chrome DevTools (Performance) or summarise it with
 *   node bench/cpuprofile-top.js .tmp/prof/<file>.cpuprofile
 */
import { measureEmits } from './emit.js';
import { deadPort, fmt } from './lib.js';

async function main(): Promise<void> {
  const [store = 'sqlite', targets = '1', mode = 'burst', emits = '60000'] = process.argv.slice(2);
  const url = `http://127.0.0.1:${await deadPort()}`;
  const scenario = {
    store: store as 'sqlite' | 'memory',
    targets: Number(targets) as 1 | 3,
    mode: mode as 'burst' | 'sequential',
    target: 'dead' as const,
    logLevel: 'warn' as const,
  };
  const figures = await measureEmits(scenario, { url }, Number(emits), { warmup: 5_000, burst: 100 });
  console.log(
    `${store}, ${targets} target(s), ${mode}: ${fmt.int(figures.emitsPerSec)} emits/s, ${fmt.us(figures.cpuUs)} CPU µs/emit, ` +
      `p50 ${fmt.ms(figures.p50Ms)} ms, p99 ${fmt.ms(figures.p99Ms)} ms`,
  );
}

void main();

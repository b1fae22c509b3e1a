/**
 * What a sampling heap profile allocated (the e2e bench's `BENCH_HEAP`, or `node --heap-prof`),
 * per event: npx tsx bench/heapprofile-top.ts <file.heapprofile> <events> [top=25]
 */
import { readFileSync } from 'node:fs';
import { type HeapNode, heapReport } from './lib.js';

const [file, events, top = '25'] = process.argv.slice(2);
if (!file || !events) {
  console.error('usage: npx tsx bench/heapprofile-top.ts <file.heapprofile> <events> [top=25]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as { head: HeapNode };
console.log(heapReport(profile, Number(events), Number(top)).join('\n'));

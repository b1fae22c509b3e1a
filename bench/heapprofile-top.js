// Summarises a V8 sampling heap profile (.heapprofile: the e2e bench's `BENCH_HEAP`, or node --heap-prof):
// the functions that allocated the most, objects collected since included when the profile was
// sampled with them. Usage: node bench/heapprofile-top.js <file.heapprofile> [events] [top=25]
// With `events`, each function's bytes per event as well.
'use strict';
const fs = require('node:fs');

const [file, eventsArg, topArg = '25'] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/heapprofile-top.js <file.heapprofile> [events] [top=25]');
  process.exit(2);
}
const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
const events = eventsArg ? Number(eventsArg) : undefined;

const name = ({ functionName, url, lineNumber }) => {
  const where = url.replace(/.*node_modules\//, 'nm/').replace(/^file:\/\//, '').replace(process.cwd() + '/', '');
  return `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}`;
};

const bytes = new Map();
let total = 0;
const walk = (node) => {
  const size = node.selfSize ?? 0;
  total += size;
  const key = name(node.callFrame);
  bytes.set(key, (bytes.get(key) ?? 0) + size);
  for (const child of node.children ?? []) walk(child);
};
walk(profile.head);

const perEvent = (size) => (events ? `  ${(size / events).toFixed(0).padStart(6)} B/event` : '');
console.log(`total ${(total / 1e6).toFixed(1)} MB${perEvent(total)}`);
for (const [key, size] of [...bytes].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg))) {
  console.log(`${(size / 1e6).toFixed(1).padStart(8)} MB ${((100 * size) / total).toFixed(1).padStart(5)}%${perEvent(size)}  ${key}`);
}

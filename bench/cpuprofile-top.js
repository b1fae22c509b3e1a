// Summarises a V8 .cpuprofile (from `node --cpu-prof`): the functions with the most self time,
// then the most inclusive time. Usage: node bench/cpuprofile-top.js <file.cpuprofile> [self=30] [inclusive=40]
'use strict';
const fs = require('node:fs');

const [file, selfCount = '30', inclusiveCount = '40'] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/cpuprofile-top.js <file.cpuprofile> [self=30] [inclusive=40]');
  process.exit(2);
}
const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
const parent = new Map();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

const name = (node) => {
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url.replace(/.*node_modules\//, 'nm/').replace(/^file:\/\//, '').replace(process.cwd() + '/', '');
  return `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}`;
};

const timeOf = new Map(); // node id -> µs sampled in it
profile.samples.forEach((id, i) => timeOf.set(id, (timeOf.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
let total = 0;
const self = new Map();
const inclusive = new Map();
for (const [id, us] of timeOf) {
  total += us;
  const key = name(nodes.get(id));
  self.set(key, (self.get(key) ?? 0) + us);
  const seen = new Set();
  for (let at = id; at !== undefined; at = parent.get(at)) {
    const k = name(nodes.get(at));
    if (!seen.has(k)) inclusive.set(k, (inclusive.get(k) ?? 0) + us);
    seen.add(k);
  }
}
const top = (map, n) => [...map].sort((a, b) => b[1] - a[1]).slice(0, Number(n));
const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
console.log(`total ${(total / 1000).toFixed(0)} ms sampled\n--- self`);
for (const [key, us] of top(self, selfCount)) console.log(`${(us / 1000).toFixed(0).padStart(7)} ms ${pct(us)}  ${key}`);
console.log('--- inclusive');
for (const [key, us] of top(inclusive, inclusiveCount)) console.log(`${pct(us)}  ${key}`);

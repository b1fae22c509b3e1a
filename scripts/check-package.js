// Checks the built package as a user gets it: loads with require and with import, exposes the
// same names both ways, and its types compile for an Express-only user (skipLibCheck off, no Koa types).
const { execFileSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');
const cjs = require(path.join(root, 'dist', 'index.js'));
const esm = execFileSync(
  process.execPath,
  ['--input-type=module', '-e', `import * as m from ${JSON.stringify(path.join(root, 'dist', 'index.mjs'))}; console.log(JSON.stringify(Object.keys(m).sort()))`],
  { encoding: 'utf8' },
);
const cjsNames = Object.keys(cjs).filter((n) => n !== '__esModule').sort();
const esmNames = JSON.parse(esm);
if (JSON.stringify(cjsNames) !== JSON.stringify(esmNames)) {
  throw new Error(`require and import expose different names:\n${cjsNames}\n${esmNames}`);
}
for (const name of ['declareEvent', 'emit', 'subscribeTo', 'eventsMiddleware', 'koaEventsMiddleware', 'close', 'createEventBus']) {
  if (typeof cjs[name] !== 'function') throw new Error(`${name} is not exported`);
}
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'test', 'consumer')], { stdio: 'inherit' });
console.log(`package ok: ${cjsNames.length} names via require and import; consumer types compile`);

// Checks the built package as a user gets it: loads with require and with import, exposes the
// same names both ways; then check-packed-consumer.js compiles an Express-only user against the packed tarball.
const { execFileSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');
/** The names an entry exposes via require, after checking that import exposes the same. */
function sameNamesBothWays(entry) {
  const cjsModule = require(path.join(root, 'dist', `${entry}.js`));
  const esm = execFileSync(
    process.execPath,
    ['--input-type=module', '-e', `import * as m from ${JSON.stringify(path.join(root, 'dist', `${entry}.mjs`))}; console.log(JSON.stringify(Object.keys(m).sort()))`],
    { encoding: 'utf8' },
  );
  const cjsNames = Object.keys(cjsModule).filter((n) => n !== '__esModule').sort();
  const esmNames = JSON.parse(esm);
  if (JSON.stringify(cjsNames) !== JSON.stringify(esmNames)) {
    throw new Error(`${entry}: require and import expose different names:\n${cjsNames}\n${esmNames}`);
  }
  return { cjsModule, cjsNames };
}
const { cjsModule: cjs, cjsNames } = sameNamesBothWays('index');
const { cjsModule: testing, cjsNames: testingNames } = sameNamesBothWays('testing/index');
for (const name of ['createTestNetwork', 'signedRequest', 'recordEmits']) {
  if (typeof testing[name] !== 'function') throw new Error(`events-library/testing does not export ${name}`);
}
// events-library/nestjs loads without Nest (its peers are loaded when a module is built).
const { cjsModule: nestjs } = sameNamesBothWays('nestjs/index');
if (typeof nestjs.EventsModule?.forRoot !== 'function' || typeof nestjs.EVENT_BUS !== 'string') throw new Error('events-library/nestjs does not export EventsModule and EVENT_BUS');
// The subpath resolves through package.json's exports, both ways (a self-reference, as a user's code would).
const viaExports = execFileSync(
  process.execPath,
  ['--input-type=module', '-e', "import { createTestNetwork } from 'events-library/testing'; import { EventsModule } from 'events-library/nestjs'; import { createRequire } from 'node:module'; const r = createRequire(import.meta.url); console.log(typeof createTestNetwork, typeof r('events-library/testing').createTestNetwork, typeof EventsModule, typeof r('events-library/nestjs').EventsModule)"],
  { cwd: root, encoding: 'utf8' },
).trim();
if (viaExports !== 'function function function function') throw new Error(`events-library/testing or events-library/nestjs does not resolve through exports: ${viaExports}`);
for (const name of ['declareEvent', 'emit', 'subscribeTo', 'eventsMiddleware', 'koaEventsMiddleware', 'close', 'createEventBus']) {
  if (typeof cjs[name] !== 'function') throw new Error(`${name} is not exported`);
}
console.log(`package ok: ${cjsNames.length} names (testing: ${testingNames.length}) via require and import`);

// Dependencies say what the built package really uses: each dependency is required by dist/*.js or
// imported by its declarations (dist/*.d.ts, e.g. json-schema-to-ts), and everything dist/ uses is a
// dependency or a peer (optional peers are loaded lazily, so a user installs only what they use).
const fs = require('node:fs');
const { builtinModules } = require('node:module');
const pkg = require(path.join(root, 'package.json'));
const required = new Set();
for (const file of fs.readdirSync(path.join(root, 'dist'), { recursive: true })) {
  if (!/\.(js|d\.ts)$/.test(String(file))) continue;
  const code = fs.readFileSync(path.join(root, 'dist', String(file)), 'utf8');
  for (const [, spec] of code.matchAll(/(?:require\(|import\(|from )["']([^"'.][^"']*)["']/g)) {
    const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
    if (!name.startsWith('node:') && !builtinModules.includes(name)) required.add(name);
  }
}
const declared = { ...pkg.dependencies, ...pkg.peerDependencies };
const unused = Object.keys(pkg.dependencies ?? {}).filter((name) => !required.has(name));
const undeclared = [...required].filter((name) => !(name in declared));
if (unused.length > 0) throw new Error(`dependencies that dist/ never loads (make them peers or devDependencies): ${unused.join(', ')}`);
if (undeclared.length > 0) throw new Error(`dist/ loads packages package.json does not declare: ${undeclared.join(', ')}`);
for (const peer of Object.keys(pkg.peerDependencies ?? {})) {
  if (!pkg.peerDependenciesMeta?.[peer]?.optional) throw new Error(`peer ${peer} must be optional: the core runs without it`);
}
// A fresh clone has no dist/: `npm pack` / `npm publish` must build first; and what is packed is the build.
if (!/\bbuild\b/.test(pkg.scripts?.prepack ?? '')) throw new Error('package.json needs "prepack": "npm run build"');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const [packed] = JSON.parse(execFileSync(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' }));
const packedFiles = new Set(packed.files.map((f) => f.path));
for (const file of ['dist/index.js', 'dist/index.d.ts', 'dist/index.mjs', 'dist/index.d.mts', 'dist/testing/index.js', 'dist/testing/index.d.ts', 'dist/testing/index.mjs', 'dist/testing/index.d.mts', 'dist/nestjs/index.js', 'dist/nestjs/index.d.ts', 'dist/nestjs/index.mjs', 'dist/nestjs/index.d.mts', 'dist/cli.js', 'README.md']) {
  if (!packedFiles.has(file)) throw new Error(`npm pack would not include ${file}`);
}
console.log(`dependencies ok: dist/ loads ${[...required].sort().join(', ')}; npm pack includes the build (${packedFiles.size} files)`);
require('./check-packed-consumer.js');

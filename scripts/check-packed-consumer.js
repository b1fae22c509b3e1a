// Installs the packed package into an empty project with only express and typescript beside it
// (no optional peer), and compiles an Express-only user's code with skipLibCheck off: the
// published declarations must not import an optional peer (@opentelemetry/api, pg, amqplib, ...).
// Inside the repository those peers are dev dependencies, so only a project outside it can tell.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const rootPkg = require(path.join(root, 'package.json'));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'events-library-consumer-'));
try {
  const [packed] = JSON.parse(execFileSync(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: root, encoding: 'utf8' }));
  const devVersion = (name) => rootPkg.devDependencies[name];
  fs.writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({
      name: 'express-only-consumer',
      private: true,
      type: 'commonjs',
      dependencies: {
        'events-library': `file:./${packed.filename}`,
        express: devVersion('express'),
        '@types/express': devVersion('@types/express'),
        '@types/node': devVersion('@types/node'),
        typescript: devVersion('typescript'),
      },
    }),
  );
  fs.copyFileSync(path.join(root, 'test', 'consumer', 'express-only.ts'), path.join(dir, 'express-only.ts'));
  fs.copyFileSync(path.join(root, 'test', 'consumer', 'tsconfig.json'), path.join(dir, 'tsconfig.json'));
  // npm ci has just filled the cache: prefer it, so this needs the registry only for what it lacks.
  execFileSync(npm, ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', '--loglevel=error'], { cwd: dir, stdio: 'inherit' });
  const installed = fs.readdirSync(path.join(dir, 'node_modules'));
  const peers = Object.keys(rootPkg.peerDependencies).filter((peer) => installed.includes(peer.split('/')[0]) && fs.existsSync(path.join(dir, 'node_modules', peer)));
  const unexpected = peers.filter((peer) => peer !== 'express');
  if (unexpected.length > 0) throw new Error(`the consumer project should hold no optional peer but express; it holds ${unexpected.join(', ')}`);
  execFileSync(process.execPath, [path.join(dir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { stdio: 'inherit' });
  console.log(`packed consumer ok: ${packed.filename} installed with express and typescript only; its types compile with skipLibCheck off`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}

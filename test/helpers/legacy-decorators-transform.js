// Jest transform for *.legacy.test.ts: TypeScript compiled with experimentalDecorators, as NestJS
// projects are, so that a test runs classes decorated the legacy way. ts-jest cannot do it beside
// its main transform (it keeps one configuration per Jest project, whichever file loads first), so
// this transpiles each file on its own; `tsc --noEmit -p .` type-checks these files as usual.
const crypto = require('node:crypto');
const fs = require('node:fs');
const ts = require('typescript');

const options = {
  module: ts.ModuleKind.CommonJS,
  target: ts.ScriptTarget.ES2022,
  esModuleInterop: true,
  experimentalDecorators: true,
  emitDecoratorMetadata: true,
  inlineSourceMap: true,
  inlineSources: true,
};
const self = crypto.createHash('sha256').update(fs.readFileSync(require.resolve('./legacy-decorators-transform.js'))).update(ts.version).digest('hex');

module.exports = {
  process(source, fileName) {
    return { code: ts.transpileModule(source, { fileName, compilerOptions: options }).outputText };
  },
  getCacheKey(source, fileName) {
    return crypto.createHash('sha256').update(self).update(fileName).update(source).digest('hex');
  },
};

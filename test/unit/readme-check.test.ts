/**
 * scripts/check-readme.js, the CI check that every ```ts block of the README compiles against src:
 * it must fail on the README mistakes issue 6 found (a library name used without its import,
 * `data` used as a typed value when it is `unknown`, a handler returning a value), report them at
 * their markdown line, and not let one block's `declare module` augmentation make another compile.
 * Runs the real script in a child process on a markdown file in a temp dir. (The passing case is
 * `npm run typecheck` itself, which runs the script on the real README in CI.)
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { tempDir, type TempDir } from '../helpers/temp-dir.js';

const SCRIPT = path.resolve(__dirname, '../../scripts/check-readme.js');

function check(markdown: string): Promise<{ code: number; stdout: string; stderr: string }> {
  writeFileSync(file, markdown);
  return new Promise((resolve) => {
    execFile(process.execPath, [SCRIPT, file], (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

let dir: TempDir;
let file: string;
beforeAll(() => {
  dir = tempDir('readme');
  file = dir.file('README.md');
});
afterAll(() => dir.remove());

const MARKDOWN = [
  '# A readme', //                                                        1
  '', //                                                                  2
  '```ts', //                                                             3
  "import { subscribeTo } from 'events-library';", //                     4
  "subscribeTo('user-created', async (data) => { await Customers.create(data); });", // 5: data is unknown
  '```', //                                                               6
  '', //                                                                  7
  '```ts', //                                                             8
  "emit('user-created', {});", //                                         9: emit not imported
  '```', //                                                               10
  '', //                                                                  11
  '```ts', //                                                             12
  "import { createEventBus } from 'events-library';", //                  13
  "const Schema = { type: 'object', properties: { email: { type: 'string' } }, required: ['email'] } as const;", // 14
  "createEventBus().subscribeTo('x', (data) => data.email, { schema: Schema });", // 15: a handler returns void
  "declare module 'events-library' { interface EventRegistry { 'user-created': typeof Schema } }", // 16
  '```', //                                                               17
  '', //                                                                  18
  '```sh', //                                                             19
  'not typescript: ignored', //                                           20
  '```', //                                                               21
  '',
].join('\n');

describe('scripts/check-readme.js', () => {
  it('fails on blocks that do not compile, naming each markdown line; one block\'s augmentation does not rescue another', async () => {
    const { code, stderr } = await check(MARKDOWN);
    expect(code).toBe(1);
    const shown = path.relative(process.cwd(), file);
    expect(stderr).toContain(`${shown}:5:`); // data is unknown: the registry merged in block 3 does not leak into block 1
    expect(stderr).toMatch(/README\.md:9:1: error TS2304: Cannot find name 'emit'/);
    expect(stderr).toMatch(/README\.md:15:\d+: error TS2769/);
    expect(stderr).toContain("Type 'string' is not assignable to type 'void | Promise<void>'"); // a handler returns nothing
    expect(stderr).not.toMatch(/README\.md:2[01]:/);
  }, 60_000);
});

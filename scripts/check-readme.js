// Type-checks every ```ts block of README.md against src/, so the README's code cannot drift from
// the library (issue 6, item 14), and checks that its relative links and #anchors lead somewhere. Usage: node scripts/check-readme.js [markdown file] (default README.md).
//
// Each block becomes its own module in a scratch directory (.tmp/, inside the repository so that
// node_modules resolves). A block that augments a module or the global scope (`declare module
// 'events-library' { interface EventRegistry … }`) is compiled in a program of its own, so that its
// augmentation cannot make another block compile; the other blocks share one program. Each has:
// - `events-library` mapped to src/index.ts (and `events-library/testing` to src/testing/index.ts):
//   a snippet must import every library name it uses; a block importing @nestjs/ compiles in a
//   program of its own with experimentalDecorators, as Nest projects are;
// - PRELUDE below: the application's own names the snippets assume (`app`, `createUser`,
//   `Customers`, …) and nothing of the library;
// - a block whose first line is a comment naming a file (`// schemas.ts …`) is written under that
//   name, so other blocks can import it (`import { UserCreated } from './schemas.js'`).
// Errors are reported at their README line. Exit 0 when every block compiles, 1 otherwise.
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');

/**
 * The application around the snippets: names a snippet uses without defining, because they are
 * the reader's own code. Only application names belong here, never anything of events-library
 * (a snippet imports what it uses from it, as a user would). Add a name when a new snippet
 * assumes one, with the type a real application would give it.
 */
const PRELUDE = `
/** The service's Express application. */
declare const app: import('express').Express;
/** The users service's own code. */
declare function createUser(input: unknown): Promise<{ id: string; email: string; name?: string }>;
/** The payments service's own code: a customer store and a CRM client. */
declare const Customers: { create(customer: { user_id: string; email: string }): Promise<void> };
declare function crmIsThrottling(): Promise<boolean>;
declare function isBlockedDomain(email: string): boolean;
declare function sendWelcomeEmail(to: string): Promise<void>;
`;
const markdownPath = path.resolve(process.argv[2] ?? path.join(root, 'README.md'));
const markdown = fs.readFileSync(markdownPath, 'utf8');
const shown = path.relative(process.cwd(), markdownPath) || markdownPath;

/** Every ```ts / ```typescript block: its code and the README line of its first code line. */
function blocksOf(text) {
  const blocks = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(```+|~~~+)\s*(ts|typescript)\s*$/.exec(lines[i]);
    if (!open) continue;
    const fence = open[2];
    const start = i + 1;
    let end = start;
    while (end < lines.length && !lines[end].trim().startsWith(fence)) end++;
    blocks.push({ code: lines.slice(start, end).join('\n'), line: start + 1 });
    i = end;
  }
  return blocks;
}

/** GitHub's anchor of each heading of a markdown file (outside code fences). */
function anchorsOf(text) {
  const anchors = new Set();
  let fenced = false;
  for (const line of text.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    const heading = !fenced && /^#+ (.*)$/.exec(line);
    if (heading) anchors.add(heading[1].trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-'));
  }
  return anchors;
}

// Every relative link goes to a file that exists, and every #anchor to a heading of its file.
const brokenLinks = [];
for (const [, link] of markdown.matchAll(/\]\(([^)\s]+)\)/g)) {
  if (/^[a-z]+:/.test(link)) continue;
  const [file, anchor] = link.split('#');
  const target = file ? path.resolve(path.dirname(markdownPath), file) : markdownPath;
  if (!fs.existsSync(target)) brokenLinks.push(`${link}: no such file`);
  else if (anchor && target.endsWith('.md') && !anchorsOf(fs.readFileSync(target, 'utf8')).has(anchor)) brokenLinks.push(`${link}: no such heading`);
}
if (brokenLinks.length > 0) {
  console.error(`${shown}: broken links:\n  ${brokenLinks.join('\n  ')}`);
  process.exit(1);
}

const blocks = blocksOf(markdown);
if (blocks.length === 0) {
  console.error(`${shown}: no \`\`\`ts block found`);
  process.exit(1);
}

const dir = path.join(root, '.tmp', `readme-check-${process.pid}`);
fs.rmSync(dir, { recursive: true, force: true });
fs.mkdirSync(dir, { recursive: true });
fs.writeFileSync(path.join(dir, 'prelude.d.ts'), PRELUDE);
const files = new Map(); // file name → README line of its first code line
const shared = []; // named blocks (`// schemas.ts`): in every program, for the blocks that import them
const together = [];
const alone = [];
blocks.forEach((block, index) => {
  const named = /^\/\/\s*([\w.-]+\.ts)\b/.exec(block.code);
  const name = named ? named[1] : `block-${String(index + 1).padStart(2, '0')}.ts`;
  if (files.has(name)) throw new Error(`${shown}:${block.line}: a second block names ${name}`);
  files.set(name, block.line);
  // `export {}` keeps each block a module: its top-level names are its own.
  fs.writeFileSync(path.join(dir, name), `${block.code}\nexport {};\n`);
  if (named) shared.push(name);
  else if (/^\s*declare\s+(module|global)\b/m.test(block.code) || nest(block.code)) alone.push([name]);
  else together.push(name);
});
const programs = [...(together.length > 0 || alone.length === 0 ? [together] : []), ...alone];
const configs = programs.map((program, index) => {
  const config = path.join(dir, `tsconfig-${index}.json`);
  const legacy = program.some((name) => nest(fs.readFileSync(path.join(dir, name), 'utf8')));
  fs.writeFileSync(config, tsconfig(['prelude.d.ts', ...shared, ...program], legacy));
  return config;
});

function nest(code) {
  return /from '@nestjs\//.test(code);
}

function tsconfig(fileNames, legacy = false) {
  return JSON.stringify(
    {
      compilerOptions: {
        target: 'ES2022',
        lib: ['ES2022'],
        module: 'ESNext',
        moduleResolution: 'Bundler',
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        esModuleInterop: true,
        ...(legacy && { experimentalDecorators: true, emitDecoratorMetadata: true }),
        types: ['node'],
        paths: {
          'events-library': [path.join(root, 'src', 'index.ts')],
          'events-library/testing': [path.join(root, 'src', 'testing', 'index.ts')],
          'events-library/nestjs': [path.join(root, 'src', 'nestjs', 'index.ts')],
        },
      },
      files: fileNames,
    },
    null,
    2,
  );
}

/** Runs tsc on one program; resolves with its diagnostics ('' when it compiles). */
function compile(config) {
  return new Promise((resolve) => {
    execFile(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', config, '--pretty', 'false'], { cwd: root }, (error, stdout, stderr) =>
      resolve(error ? `${stdout}${stderr}` || String(error) : ''),
    );
  });
}

Promise.all(configs.map(compile)).then((outputs) => {
  fs.rmSync(dir, { recursive: true, force: true });
  const output = [...new Set(outputs.join('\n').split('\n').filter(Boolean))];
  if (output.length === 0) {
    console.log(`${shown}: ${blocks.length} TypeScript blocks compile against src/ (${programs.length} programs)`);
    return;
  }
  report(output);
  process.exitCode = 1;
});

// `…/block-03.ts(5,10): error TS…` → `README.md:<line>:10: error TS…`
function report(output) {
for (const line of output) {
  const at = /^(.*?)\((\d+),(\d+)\): (.*)$/.exec(line);
  const name = at && path.basename(at[1]);
  if (at && path.dirname(path.resolve(root, at[1])) === dir && files.has(name)) {
    console.error(`${shown}:${files.get(name) + Number(at[2]) - 1}:${at[3]}: ${at[4]}`);
  } else {
    console.error(line);
  }
}
console.error(`${shown}: a TypeScript block does not compile (see above); fix the block, or PRELUDE in scripts/check-readme.js if it lacks an application name`);
}

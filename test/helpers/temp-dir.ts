import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDir {
  path: string;
  /** The path of `name` in the directory. */
  file(name: string): string;
  /** Removes the directory and everything in it. */
  remove(): void;
}

/** A fresh directory under os.tmpdir(), named `events-<prefix>-…`. */
export function tempDir(prefix: string): TempDir {
  const path = mkdtempSync(join(tmpdir(), `events-${prefix}-`));
  return { path, file: (name) => join(path, name), remove: () => rmSync(path, { recursive: true, force: true }) };
}

import { ConfigError } from './errors/index.js';

/**
 * An optional peer dependency, loaded only where a feature needs it (package.json lists them in
 * `peerDependenciesMeta`) by `load`, a literal `require` (scripts/check-package.js reads those);
 * not installed: a ConfigError with `message`, which says how to install it.
 */
export function loadPeer<T>(load: () => unknown, variable: string, message: string): T {
  try {
    return load() as T;
  } catch (cause) {
    throw new ConfigError(message, { variable, cause });
  }
}

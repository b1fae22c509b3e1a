import { ConfigError } from './errors/index.js';

/**
 * An optional peer dependency, loaded only where a feature needs it (package.json lists them in
 * `peerDependenciesMeta`); not installed: a ConfigError with `message`, which says how to install it.
 */
export function loadPeer<T>(name: string, variable: string, message: string): T {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(name) as T;
  } catch (cause) {
    throw new ConfigError(message, { variable, cause });
  }
}

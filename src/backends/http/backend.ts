import type { ResolvedConfig } from '../../config.js';
import type { Transport } from '../../send/transport.js';
import { HttpTransport } from './axios-transport.js';
import { UndiciTransport } from './undici-transport.js';

/** HTTP push (no broker configured) over the configured client: axios (the default) or undici (an optional peer, loaded here). */
export function openHttpTransport(config: ResolvedConfig): Transport {
  const { logger, timeoutMs, retry, concurrency } = config;
  if (config.httpClient === 'undici') return new UndiciTransport({ logger, timeoutMs, retry, connections: concurrency });
  return new HttpTransport({ logger, timeoutMs, retry });
}

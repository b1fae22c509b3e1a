import type { StoreBackend } from '../stores.js';
import { MemoryInbox } from './inbox.js';
import { MemoryOutbox } from './outbox.js';

/** In memory: the default for whatever no durable store keeps (lost at exit; the bus logs what is left). */
export const memoryBackend: StoreBackend = {
  keepsOutbox: () => true,
  keepsInbox: () => true,
  openOutbox: (config) =>
    new MemoryOutbox(config.outbox.maxPending, config.outbox.maxDeadLetters, config.logger, config.outbox.maxPendingBytes),
  openInbox: (config) => new MemoryInbox(config.inbox.maxEntries),
};

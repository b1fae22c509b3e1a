import type { Channel, ChannelModel, ConfirmChannel, GetMessage } from 'amqplib';
import type { Logger } from 'winston';
import { registryQueue } from './topology.js';

/**
 * The registry of services under a prefix. AMQP 0-9-1 has no way to list queues (the management
 * API is a plugin, over HTTP, with its own credentials), so an operator asked for every service's
 * dead letters could not find them. Instead each service's consumer records its name, once, as a
 * message in the durable queue `<prefix>events-library.services`; the operator reads the queue
 * without acknowledging (the messages stay) and takes the distinct names. Services that last ran
 * with an older release are not in it until they start again.
 */

/**
 * Records `service` in the registry unless it is there; drops duplicates left by two instances
 * starting at once. Never throws, and resolves within `timeoutMs` (the consumer waits for it: an
 * operator finds the service as soon as it consumes), going on in the background after that.
 */
export async function registerService(model: ChannelModel, prefix: string, service: string, logger: Logger, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
  await Promise.race([register(model, prefix, service, logger), late]).finally(() => clearTimeout(timer));
}

async function register(model: ChannelModel, prefix: string, service: string, logger: Logger): Promise<void> {
  const spec = registryQueue(prefix);
  let channel: ConfirmChannel | undefined;
  try {
    channel = await model.createConfirmChannel();
    channel.on('error', () => undefined);
    await channel.assertQueue(spec.name, { durable: true, arguments: spec.arguments });
    if (!(await registeredNames(channel, prefix, true)).includes(service)) {
      channel.sendToQueue(spec.name, Buffer.from(service, 'utf8'), { persistent: true });
      await channel.waitForConfirms();
    }
  } catch (error) {
    logger.warn('could not record this service in the broker registry (operators listing every service will miss it)', {
      queue: spec.name,
      error: (error as Error)?.message ?? String(error),
    });
  } finally {
    await channel?.close().catch(() => undefined);
  }
}

/**
 * The service names in the registry (which must exist), sorted. Each message is fetched and given
 * back at once (nack, requeue) on `channel`, so a next read on the same channel finds it; with
 * `dropDuplicates`, a repeated name is acked away instead.
 */
export async function registeredNames(channel: Channel, prefix: string, dropDuplicates = false): Promise<string[]> {
  const queue = registryQueue(prefix).name;
  const names = new Set<string>();
  const held: GetMessage[] = [];
  for (;;) {
    const message = await channel.get(queue, { noAck: false });
    if (message === false) break;
    const name = message.content.toString('utf8');
    if (names.has(name) && dropDuplicates) channel.ack(message);
    else held.push(message);
    names.add(name);
  }
  for (const message of held) channel.nack(message, false, true);
  return [...names].sort();
}

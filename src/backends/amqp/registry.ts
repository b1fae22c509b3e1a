import type { Channel, ChannelModel, ConfirmChannel } from 'amqplib';
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

/** Records `service` in the registry unless it is there; drops duplicates left by two instances starting at once. Never throws. */
export async function registerService(model: ChannelModel, prefix: string, service: string, logger: Logger): Promise<void> {
  const spec = registryQueue(prefix);
  let channel: ConfirmChannel | undefined;
  try {
    channel = await model.createConfirmChannel();
    channel.on('error', () => undefined);
    await channel.assertQueue(spec.name, { durable: true, arguments: spec.arguments });
    const names = await readNames(channel, spec.name, true);
    if (!names.has(service)) {
      channel.sendToQueue(spec.name, Buffer.from(service, 'utf8'), { persistent: true });
      await channel.waitForConfirms();
    }
  } catch (error) {
    logger.warn('could not record this service in the broker registry (operators listing every service will miss it)', {
      queue: spec.name,
      error: (error as Error)?.message ?? String(error),
    });
  } finally {
    // Returns the names read (unacknowledged) to the queue.
    await channel?.close().catch(() => undefined);
  }
}

/** The service names recorded under `prefix`, sorted; none when no service ever registered. */
export async function registeredServices(model: ChannelModel, prefix: string): Promise<string[]> {
  const { name } = registryQueue(prefix);
  const channel = await model.createChannel();
  channel.on('error', () => undefined);
  try {
    await channel.checkQueue(name);
  } catch {
    return []; // the channel is closed by the broker's refusal
  }
  try {
    return [...(await readNames(channel, name, false))].sort();
  } finally {
    await channel.close().catch(() => undefined);
  }
}

/** Every name in the queue, fetched unacknowledged (returned when the channel closes); with `dropDuplicates`, repeats are acked away. */
async function readNames(channel: Channel, queue: string, dropDuplicates: boolean): Promise<Set<string>> {
  const names = new Set<string>();
  for (;;) {
    const message = await channel.get(queue, { noAck: false });
    if (message === false) return names;
    const name = message.content.toString('utf8');
    if (names.has(name) && dropDuplicates) channel.ack(message);
    names.add(name);
  }
}

/** What a bench run leaves on RabbitMQ under its queue prefix, deleted. */
import amqplib from 'amqplib';
import { eventsExchange, registryQueue, serviceTopology } from '../src/backends/amqp/topology.js';
import { DEFAULTS } from '../src/index.js';

/** Deletes a service's queues (main, dead letters, waits), the prefix's registry queue and its events exchange. */
export async function deleteServiceTopology(url: string, prefix: string, service: string): Promise<void> {
  const { main, deadLetters, waits } = serviceTopology(prefix, service, DEFAULTS.broker.deliveryLimit, DEFAULTS.broker.retryDelaysMs);
  const connection = await amqplib.connect(url);
  try {
    const channel = await connection.createChannel();
    for (const { name } of [main, deadLetters, ...waits.values(), registryQueue(prefix)]) await channel.deleteQueue(name);
    await channel.deleteExchange(eventsExchange(prefix));
  } finally {
    await connection.close();
  }
}

/**
 * Baseline: hand-written amqplib through RabbitMQ (as bench/amqp.ts: quorum queues, persistent
 * messages, publisher confirms with 64 publishes in flight, prefetch 64 and manual ack). Each
 * target consumes its own queue; at 3 targets the sender publishes once to a fanout exchange
 * bound to the three queues.
 */
import amqplib from 'amqplib';
import type { E2EPayload } from './event.js';
import { AMQP_URL, benchId, type Emitter, type ReceiverSide, type Sink, WINDOW } from './system.js';

let connection: Promise<amqplib.ChannelModel> | undefined;
const shared = () => (connection ??= amqplib.connect(AMQP_URL));

export async function receiver(_system: string, index: number, sink: Sink): Promise<ReceiverSide> {
  const queue = `${benchId()}.target${index}`;
  const own = await amqplib.connect(AMQP_URL);
  const channel = await own.createChannel();
  await channel.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await channel.prefetch(WINDOW);
  await channel.consume(queue, (message) => {
    if (!message) return;
    sink((JSON.parse(message.content.toString('utf8')) as { data: E2EPayload }).data);
    channel.ack(message);
  });
  return {
    address: queue,
    close: async () => {
      await channel.deleteQueue(queue);
      await own.close();
    },
  };
}

export async function sender(_system: string, queues: string[]): Promise<Emitter> {
  const channel = await (await shared()).createConfirmChannel();
  let exchange = '';
  let routingKey = queues[0]!;
  if (queues.length > 1) {
    exchange = `${benchId()}.fanout`;
    routingKey = '';
    await channel.assertExchange(exchange, 'fanout', { durable: false, autoDelete: false });
    for (const queue of queues) await channel.bindQueue(queue, exchange, '');
  }
  let seq = 0;
  return {
    emit: (data) =>
      new Promise<void>((resolve, reject) => {
        const id = `${benchId()}-${seq++}`;
        const body = Buffer.from(JSON.stringify({ specversion: '1.0', id, type: 'user-created', source: 'bench-src', data }));
        channel.publish(exchange, routingKey, body, { persistent: true, contentType: 'application/cloudevents+json', messageId: id }, (error: unknown) =>
          error ? reject(error as Error) : resolve(),
        );
      }),
    close: async () => {
      if (exchange) await channel.deleteExchange(exchange);
      await channel.close();
    },
  };
}

/**
 * Baseline: hand-written kafkajs through Kafka (the run's cluster, KAFKA_URL), written the way a
 * team writes one: a producer with acks -1 (every in-sync replica, as the library), one record per
 * send keyed by the event id, 64 sends in flight (the sender's window); each target a consumer
 * group reading its own topic with kafkajs' auto-commit (offsets committed after each batch the
 * handler went through). At 3 targets one send carries the record to each target's topic.
 */
import { Kafka, logLevel, type Producer } from 'kafkajs';
import type { E2EPayload } from './event.js';
import { benchId, type Emitter, KAFKA_URL, type ReceiverSide, type Sink } from './system.js';

const brokers = () => KAFKA_URL!.replace(/^kafkas?:\/\//i, '').split(',');
const client = () => new Kafka({ clientId: benchId(), brokers: brokers(), logLevel: logLevel.NOTHING });

let producer: Promise<Producer> | undefined;

export async function receiver(_system: string, index: number, sink: Sink): Promise<ReceiverSide> {
  const topic = `${benchId()}.raw.target${index}`;
  const consumer = client().consumer({ groupId: topic, maxWaitTimeInMs: 100 });
  let joined!: () => void;
  const groupJoined = new Promise<void>((resolve) => (joined = resolve));
  consumer.on(consumer.events.GROUP_JOIN, () => joined());
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    partitionsConsumedConcurrently: 6,
    eachMessage: async ({ message }) => sink((JSON.parse(message.value!.toString('utf8')) as { data: E2EPayload }).data),
  });
  await groupJoined;
  return { address: topic, close: () => consumer.disconnect() };
}

export async function sender(_system: string, topics: string[]): Promise<Emitter> {
  // One producer for the whole bench (its connections and metadata stay warm, as a service's would).
  producer ??= (async () => {
    const p = client().producer();
    await p.connect();
    return p;
  })();
  const p = await producer;
  let seq = 0;
  return {
    emit: (data) => {
      const id = `${benchId()}-${seq++}`;
      const value = JSON.stringify({ specversion: '1.0', id, type: 'user-created', source: 'bench-src', data });
      const message = { key: id, value, headers: { 'content-type': 'application/cloudevents+json' } };
      return p.sendBatch({ acks: -1, topicMessages: topics.map((topic) => ({ topic, messages: [message] })) });
    },
    close: async () => {},
  };
}

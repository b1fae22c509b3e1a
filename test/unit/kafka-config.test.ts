import { typeTopic } from '../../src/backends/kafka/topics.js';
import { createEventBus } from '../../src/bus.js';
import { resolveConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors/index.js';
import type { KafkaBroker } from '../../src/backends/kafka/config.js';
import { recordOf } from '../../src/backends/kafka/envelope.js';
import type { Delivery } from '../../src/send/transport.js';
import { quietLogger } from '../helpers/logger.js';
import { newSecret } from '../helpers/signing.js';
import { waitFor } from '../helpers/wait.js';

describe('choosing Kafka', () => {
  it('kafka:// selects Kafka with its host list; kafkas:// turns TLS on; SASL passes through', () => {
    const broker = resolveConfig({ env: { EVENTS_BROKER_URL: 'kafka://k1:9092,k2:9093', EVENTS_BROKER_PREFIX: 'ci.' } }).broker!;
    expect(broker).toMatchObject({ kind: 'kafka', prefix: 'ci.', kafka: { brokers: ['k1:9092', 'k2:9093'], ssl: false, createTopics: true, partitions: 6 } });
    const sasl = { mechanism: 'plain', username: 'u', password: 'p' };
    const tls = resolveConfig({ env: {}, broker: { url: 'kafkas://k1:9094', kafka: { sasl, createTopics: false } } }).broker as KafkaBroker;
    expect(tls.kafka).toMatchObject({ brokers: ['k1:9094'], ssl: true, sasl, createTopics: false });
    expect(resolveConfig({ env: { EVENTS_BROKER_URL: 'amqp://h' } }).broker!.kind).toBe('amqp');
  });

  it('refuses a Kafka URL without host:port pairs, naming the variable', () => {
    for (const url of ['kafka://', 'kafka://k1', 'kafka://k1:9092,,k2:9092', 'kafka://user:secret@k1:9092']) {
      let error: unknown;
      try {
        resolveConfig({ env: { EVENTS_BROKER_URL: url } });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).variable).toBe('EVENTS_BROKER_URL');
      expect((error as ConfigError).message).not.toContain('secret');
    }
  });

  it('emit(…, { key }) puts the key in the signed event as partitionkey and makes it the record key; else the event id', async () => {
    const sent: Delivery[] = [];
    const transport = {
      send: async (d: Delivery) => {
        sent.push(d);
        return { outcome: 'delivered' as const, attempts: 1 };
      },
      close: async () => undefined,
    };
    const bus = createEventBus({ service: 'users', secret: newSecret(), logger: quietLogger(), transport, services: { billing: { url: 'http://127.0.0.1:1/events' } } });
    bus.declareEvent('user-created', ['billing']);
    try {
      await expect(bus.emit('user-created', {}, { key: '' })).rejects.toThrow(TypeError);
      const keyed = await bus.emit('user-created', { partitionkey: 'not this' }, { key: 'acct "7"' });
      const plain = await bus.emit('user-created', { partitionkey: 'not this' });
      await waitFor(() => sent.length === 2, { what: 'both sent' });
      const byId = new Map(sent.map((d) => [d.eventId, d]));
      expect(JSON.parse(byId.get(keyed.id)!.body)).toMatchObject({ partitionkey: 'acct "7"' });
      expect(recordOf(byId.get(keyed.id)!)).toMatchObject({ key: 'acct "7"', headers: { ce_partitionkey: 'acct "7"' } });
      expect(JSON.parse(byId.get(plain.id)!.body).partitionkey).toBeUndefined();
      expect(recordOf(byId.get(plain.id)!).key).toBe(plain.id);
    } finally {
      await bus.close();
    }
  });
});

describe('typeTopic: the topic of an event declared without targets', () => {
  it('is <prefix>events.<type> for a type Kafka takes as is; otherwise refused characters become _, cut to fit, with a hash of the type so two types never share one', () => {
    expect(typeTopic('p.', 'user-created')).toBe('p.events.user-created');
    expect(typeTopic('', 'Order_Paid.v2')).toBe('events.Order_Paid.v2');
    const slash = typeTopic('', 'order/paid');
    expect(slash).toMatch(/^events\.order_paid\.[0-9a-f]{8}$/);
    expect(typeTopic('', 'order:paid')).toMatch(/^events\.order_paid\.[0-9a-f]{8}$/);
    expect(typeTopic('', 'order:paid')).not.toBe(slash);
    const long = typeTopic('', 'x'.repeat(300));
    expect(long.length).toBeLessThanOrEqual(249);
    expect(long).toMatch(/^[A-Za-z0-9._-]+$/);
  });
});

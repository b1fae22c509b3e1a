import type { Channel, ConsumeMessage } from 'amqplib';
import { Acks } from '../../src/backends/amqp/acks';

/** A channel that records the acks and nacks it is asked to send, as RabbitMQ would receive them. */
function recordingChannel() {
  const frames: string[] = [];
  const channel = {
    ack: (message: ConsumeMessage, allUpTo?: boolean) => frames.push(`ack ${message.fields.deliveryTag}${allUpTo ? ' multiple' : ''}`),
    nack: (message: ConsumeMessage, _allUpTo?: boolean, requeue?: boolean) => frames.push(`nack ${message.fields.deliveryTag}${requeue ? ' requeue' : ''}`),
  };
  return { frames, channel: channel as unknown as Channel };
}

const message = (deliveryTag: number) => ({ fields: { deliveryTag } }) as ConsumeMessage;
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('Acks: a consumer channel acks what one turn of the event loop settled, together', () => {
  it('acks messages settled in one turn with one multiple ack', async () => {
    const { frames, channel } = recordingChannel();
    const acks = new Acks(channel);
    const messages = [1, 2, 3, 4].map(message);
    for (const m of messages) acks.received(m);
    for (const m of [messages[2]!, messages[0]!, messages[3]!, messages[1]!]) acks.ack(m);
    expect(frames).toEqual([]);
    await nextTurn();
    expect(frames).toEqual(['ack 4 multiple']);
  });

  it('never covers a message still in hand: single acks above it', async () => {
    const { frames, channel } = recordingChannel();
    const acks = new Acks(channel);
    const messages = [1, 2, 3, 4, 5].map(message);
    for (const m of messages) acks.received(m);
    acks.ack(messages[0]!);
    acks.ack(messages[1]!);
    acks.ack(messages[3]!); // 3 is still being handled
    acks.ack(messages[4]!);
    await nextTurn();
    expect(frames).toEqual(['ack 2 multiple', 'ack 4', 'ack 5']);
    acks.ack(messages[2]!);
    await nextTurn();
    expect(frames.at(-1)).toBe('ack 3 multiple');
  });

  it('requeues at once, and a later multiple ack does not cover the requeued message', async () => {
    const { frames, channel } = recordingChannel();
    const acks = new Acks(channel);
    const messages = [1, 2, 3].map(message);
    for (const m of messages) acks.received(m);
    acks.ack(messages[0]!);
    acks.requeue(messages[1]!);
    expect(frames).toEqual(['nack 2 requeue']);
    acks.ack(messages[2]!);
    await nextTurn();
    // RabbitMQ's multiple ack covers outstanding tags only: 2 was already given back.
    expect(frames).toEqual(['nack 2 requeue', 'ack 3 multiple']);
  });

  it('flush sends what is decided without waiting for the turn to end (stop, before the channel closes)', () => {
    const { frames, channel } = recordingChannel();
    const acks = new Acks(channel);
    acks.received(message(7));
    acks.ack(message(7));
    acks.flush();
    expect(frames).toEqual(['ack 7 multiple']);
  });
});

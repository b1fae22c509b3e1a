import type { KafkaOutgoingMessage } from '../../src/backends/kafka/api.js';
import { ProduceQueue, type TopicMessages } from '../../src/backends/kafka/produce-queue.js';

const record = (key: string, bytes = 10): KafkaOutgoingMessage => ({ key, value: 'x'.repeat(bytes) });
const keysOf = (request: TopicMessages[]) => request.map(({ topic, messages }) => `${topic}:${messages.map((m) => String(m.key)).join(',')}`);

/** A produce function that records each request and answers it when told to. */
function cluster(refuse: (request: TopicMessages[]) => boolean = () => false) {
  const requests: TopicMessages[][] = [];
  let release: (() => void) | undefined;
  return {
    requests,
    /** The first request waits until `open()`: what is sent meanwhile queues up. */
    hold: true,
    open() {
      this.hold = false;
      release?.();
    },
    produce(request: TopicMessages[]): Promise<void> {
      requests.push(request);
      const answer = () => (refuse(request) ? Promise.reject(new Error(`refused ${request.map((t) => t.topic).join('+')}`)) : Promise.resolve());
      if (!this.hold) return answer();
      return new Promise<void>((resolve) => (release = resolve)).then(answer);
    },
  };
}

test('what is sent while a request is in flight goes in the next one, every topic together, in order', async () => {
  const c = cluster();
  const queue = new ProduceQueue({ produce: (r) => c.produce(r), maxBytes: 1_000_000 });
  const first = queue.send('a', [record('a1')]);
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  const later = [queue.send('a', [record('a2')]), queue.send('b', [record('b1'), record('b2')]), queue.send('a', [record('a3')])];
  c.open();
  await Promise.all([first, ...later]);
  expect(c.requests.map(keysOf)).toEqual([['a:a1'], ['a:a2,a3', 'b:b1,b2']]);
});

test('a request holds at most maxBytes of values; a larger entry goes alone', async () => {
  const c = cluster();
  c.hold = false;
  const queue = new ProduceQueue({ produce: (r) => c.produce(r), maxBytes: 25 });
  await Promise.all([queue.send('a', [record('1')]), queue.send('a', [record('2')]), queue.send('a', [record('3')]), queue.send('a', [record('big', 40)])]);
  expect(c.requests.map(keysOf)).toEqual([['a:1,2'], ['a:3'], ['a:big']]);
});

test('a refused topic fails only its own entries: a request of several topics is sent again one topic at a time', async () => {
  const c = cluster((request) => request.some((t) => t.topic === 'bad'));
  c.hold = false;
  const queue = new ProduceQueue({ produce: (r) => c.produce(r), maxBytes: 1_000_000 });
  const results = await Promise.allSettled([queue.send('good', [record('g1')]), queue.send('bad', [record('x1')]), queue.send('good', [record('g2')])]);
  expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  expect((results[1] as PromiseRejectedResult).reason.message).toBe('refused bad');
  expect(c.requests.map(keysOf)).toEqual([['good:g1,g2', 'bad:x1'], ['good:g1,g2'], ['bad:x1']]);
});

test('entries not sent yet fail when the link closes', async () => {
  const c = cluster();
  const queue = new ProduceQueue({ produce: (r) => c.produce(r), maxBytes: 1_000_000 });
  const first = queue.send('a', [record('1')]);
  await new Promise((resolve) => setImmediate(resolve));
  const waiting = queue.send('a', [record('2')]);
  queue.failPending(new Error('the bus is closing'));
  c.open();
  await expect(first).resolves.toBeUndefined();
  await expect(waiting).rejects.toThrow('the bus is closing');
  expect(c.requests).toHaveLength(1);
});

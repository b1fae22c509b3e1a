import { createEventBus, type DeadLetter, type DeliveredReport, type EventBus } from '../../src/index.js';
import { closeAfterEach } from '../helpers/cleanups.js';
import { createCapturingLogger } from '../helpers/logger.js';
import { startRecordingServer } from '../helpers/recording-server.js';
import { newSecret } from '../helpers/signing.js';
import { waitFor } from '../helpers/wait.js';

const open = closeAfterEach();

describe('onDelivered and onDeadLetter hooks', () => {
  it('are called once per delivered and per dead-lettered delivery, and a throwing or rejecting hook never breaks delivery', async () => {
    const accepting = await startRecordingServer({ then: { status: 200 } });
    const refusing = await startRecordingServer({ then: { status: 400 } });
    open.push(accepting, refusing);
    const log = createCapturingLogger('info');
    const delivered: DeliveredReport[] = [];
    const dead: DeadLetter[] = [];
    const bus: EventBus = createEventBus({
      service: 'users',
      secret: newSecret(),
      services: { payments: accepting.url, audit: refusing.url },
      logger: log.logger,
      env: {},
      retry: { retries: 0 },
      onDelivered: (report) => {
        delivered.push(report);
        throw new Error('alerting is broken');
      },
      onDeadLetter: async (letter) => {
        dead.push(letter);
        throw new Error('pager is down');
      },
    });
    open.unshift(bus);
    bus.declareEvent('user-created', ['payments', 'audit']);

    const first = await bus.emit('user-created', { id: 1 });
    await waitFor(() => delivered.length === 1 && dead.length === 1, { what: 'both hooks' });
    // The delivery went on as if no hook existed: recorded delivered, the refusal dead-lettered once.
    await waitFor(async () => (await bus.outboxStats()).pending === 0, { what: 'empty outbox' });
    expect(await bus.deadLetters()).toHaveLength(1);
    expect(delivered[0]).toMatchObject({ eventId: first.id, type: 'user-created', source: 'users', target: 'payments', attempts: 1, status: 200 });
    expect(delivered[0]!.latencyMs).toBeGreaterThanOrEqual(0);
    expect(dead[0]).toMatchObject({ eventId: first.id, target: 'audit', reason: 'refused', status: 400, attempts: 1 });
    expect(typeof dead[0]!.body).toBe('string');

    // Both failures are logged at error level, and the lanes keep delivering.
    await waitFor(() => log.withMessage('onDeadLetter hook failed; the delivery is not affected').length === 1, { what: 'rejection logged' });
    expect(log.withMessage('onDelivered hook failed; the delivery is not affected')).toEqual([
      expect.objectContaining({ level: 'error', eventId: first.id, target: 'payments', error: 'alerting is broken' }),
    ]);
    const second = await bus.emit('user-created', { id: 2 });
    await waitFor(() => delivered.length === 2 && dead.length === 2, { what: 'hooks of the second event' });
    expect(delivered[1]!.eventId).toBe(second.id);
    expect(accepting.requests).toHaveLength(2);
    expect(log.withMessage('event delivered')).toHaveLength(2);
  });

  it('refuses a hook that is not a function', () => {
    expect(() => createEventBus({ service: 'users', env: {}, onDelivered: 'yes' as never })).toThrow('onDelivered must be a function');
  });
});

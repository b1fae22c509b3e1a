import { DEFAULTS } from '../defaults.js';
import { ConfigError } from '../errors/index.js';
import {
  type DeadLetter,
  type DeadLetterFilter,
  type DeadLetterOperator,
  type DeadLetterSelection,
  matchesDeadLetter,
  selectionFilter,
} from '../operate/operator.js';
import { type BrokerDeadLetter, listBrokerDeadLetters, replayBrokerDeadLetters } from './amqp/dead-letters.js';

/** A broker location: its URL, the prefix the services run with, and (optionally) one receiving service. */
export interface BrokerLocation {
  broker: string;
  prefix?: string;
  service?: string;
}

/**
 * The dead-letter queues (RabbitMQ) or topics (Kafka) of a broker, behind the operator seam.
 * Interim: ids are the event ids until the broker backends assign their own.
 */
export function openBrokerOperator(location: BrokerLocation): DeadLetterOperator {
  const service = location.service;
  if (typeof service !== 'string' || service.trim() === '') {
    throw new ConfigError('which service? pass its name (the service whose queue the dead letters came from)', { variable: 'EVENTS_SERVICE_NAME' });
  }
  const options = { broker: location.broker, service, prefix: location.prefix ?? DEFAULTS.broker.prefix };
  const list = async (filter?: DeadLetterFilter): Promise<DeadLetter[]> =>
    (await listBrokerDeadLetters(options)).map((letter) => toDeadLetter(letter, service)).filter((l) => matchesDeadLetter(l, filter));
  return {
    stats: async () => {
      const letters = await list();
      return { durable: true, pending: 0, deadLetters: letters.length, targets: letters.length ? { [service]: { pending: 0, deadLetters: letters.length } } : {} };
    },
    deadLetters: list,
    replay: async (selection: DeadLetterSelection) => {
      const ids = (await list(selectionFilter(selection))).map((l) => l.id);
      return ids.length === 0 ? 0 : replayBrokerDeadLetters(options, selection === 'all' ? 'all' : { eventIds: ids });
    },
    discard: async () => {
      throw new Error('discarding broker dead letters is not available yet');
    },
    close: async () => undefined,
  };
}

function toDeadLetter(letter: BrokerDeadLetter, service: string): DeadLetter {
  return {
    id: letter.eventId ?? '',
    kept: 'queue',
    eventId: letter.eventId,
    type: letter.type,
    source: letter.source,
    target: service,
    reason: letter.reason ?? 'unknown',
    error: letter.error,
    attempts: letter.attempts,
    createdAt: undefined,
    deadAt: letter.deadAt,
    body: letter.body,
  };
}

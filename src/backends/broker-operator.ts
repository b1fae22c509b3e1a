import { ConfigError } from '../errors/index.js';
import type { DeadLetterOperator } from '../operate/operator.js';
import { type BrokerLocation, brokerBackendFor } from './broker-link.js';

export type { BrokerLocation } from './broker-link.js';

/**
 * The dead-letter queues (RabbitMQ) or topics (Kafka) of a broker, behind the operator seam: the
 * backend serving the URL's scheme answers (see `amqp/dead-letters.ts`, `kafka/dead-letters.ts`).
 * Without `service`, every service's dead letters under the prefix.
 */
export function openBrokerOperator(location: BrokerLocation): DeadLetterOperator {
  const { service } = location;
  if (service !== undefined && (typeof service !== 'string' || service.trim() === '')) {
    throw new ConfigError('which service? pass its name (the service whose dead letters to see), or none for every service', {
      variable: 'EVENTS_SERVICE_NAME',
    });
  }
  return brokerBackendFor(location.broker).operator(location);
}

// ---------------------------------------------------------------------------------------------
// Interim, for src/broker-cli.ts and the public exports until they move to openBrokerOperator
// (then delete from here down, and the re-export in amqp/dead-letters.ts).

/** @deprecated use openBrokerOperator({ broker, prefix, service }) */
export interface BrokerAdminOptions {
  broker: string;
  service: string;
  prefix?: string;
  /** Ignored: every dead letter is read. */
  limit?: number;
}

/** @deprecated use openBrokerOperator(…).deadLetters() */
export interface BrokerDeadLetter {
  eventId: string | undefined;
  type: string | undefined;
  source: string | undefined;
  /** The receiving service's queue (or topic) it came from. */
  queue: string;
  reason: string | undefined;
  error: string | undefined;
  deadAt: number | undefined;
  attempts: number | undefined;
  body: string;
}

/** @deprecated select by dead-letter id with openBrokerOperator(…).replay() */
export type BrokerReplaySelection = 'all' | { eventIds: readonly string[] };

/** @deprecated use openBrokerOperator(…).deadLetters() */
export async function listBrokerDeadLetters(options: BrokerAdminOptions): Promise<BrokerDeadLetter[]> {
  const operator = openBrokerOperator(options);
  try {
    return (await operator.deadLetters()).map((l) => ({
      eventId: l.eventId,
      type: l.type,
      source: l.source,
      queue: `${options.prefix ?? ''}${l.target}`,
      reason: l.reason,
      error: l.error,
      deadAt: l.deadAt,
      attempts: l.attempts,
      body: l.body,
    }));
  } finally {
    await operator.close();
  }
}

/** @deprecated use openBrokerOperator(…).replay(ids) */
export async function replayBrokerDeadLetters(options: BrokerAdminOptions, selection: BrokerReplaySelection = 'all'): Promise<number> {
  const operator = openBrokerOperator(options);
  try {
    if (selection === 'all') return await operator.replay('all');
    const wanted = new Set(selection.eventIds);
    const ids = (await operator.deadLetters()).filter((l) => l.eventId !== undefined && wanted.has(l.eventId)).map((l) => l.id);
    return ids.length === 0 ? 0 : await operator.replay(ids);
  } finally {
    await operator.close();
  }
}

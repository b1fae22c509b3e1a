import { AssertionError } from 'node:assert';
import { checkContracts, formatFinding } from '../contracts/check.js';

/**
 * Throws an AssertionError listing every finding unless each payload the producer may send (by
 * its AsyncAPI document) is provably valid under the consumer's schema, for every type the one
 * sends and the other receives: `events-library check` in a test. Documents as `bus.asyncapi()`
 * returns them, or parsed from the files other teams publish.
 */
export function assertCompatible(producerDocument: unknown, consumerDocument: unknown): void {
  const { producer, consumer, findings } = checkContracts(producerDocument, consumerDocument);
  if (findings.length === 0) return;
  throw new AssertionError({
    message: `${consumer} may refuse what ${producer} sends (${findings.length} finding${findings.length === 1 ? '' : 's'}):\n${findings.map(formatFinding).join('\n')}`,
  });
}

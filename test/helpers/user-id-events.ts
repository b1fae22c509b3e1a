import { createTestNetwork, type TestNetwork } from '../../src/testing/index.js';
import { quietLogger } from './logger.js';

/** The payload the decorator and NestJS tests subscribe to: `{ user_id }`, nothing else. */
export const UserIdSchema = {
  type: 'object',
  properties: { user_id: { type: 'string' } },
  required: ['user_id'],
  additionalProperties: false,
} as const;

/** An in-process test network with a quiet logger, closed by `cleanups` after the test. */
export function quietNetwork(cleanups: Array<() => unknown>): TestNetwork {
  const created = createTestNetwork({ logger: quietLogger() });
  cleanups.push(() => created.close());
  return created;
}

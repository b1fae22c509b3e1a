/**
 * Type tests of events-library/testing, compiled by `npm run typecheck`: every `@ts-expect-error`
 * line must be an error. Nothing here runs. (Type names of their own: typed-payloads.ts augments EventRegistry.)
 */
import { assertCompatible, createTestNetwork, recordEmits, signedRequest } from '../../src/testing/index.js';

const UserCreated = {
  type: 'object',
  properties: { user_id: { type: 'string' } },
  required: ['user_id'],
  additionalProperties: false,
} as const;

const network = createTestNetwork();
// A bus of the network keeps the types its declarations give it.
const users = network.bus('users').declareEvent('kit-user-added', ['payments'], { schema: UserCreated });
void users.emit('kit-user-added', { user_id: 'u1' });
// @ts-expect-error: user_id must be a string
void users.emit('kit-user-added', { user_id: 1 });
const added = network.add(users);
// @ts-expect-error: add() returns the bus with its event map: an undeclared type is refused
void added.emit('kit-user-removed', {});

// The recorder types a recorded payload by the bus's schema.
const recorder = recordEmits(users);
const id: string = recorder.emitted('kit-user-added')[0]!.data.user_id;
void id;
// @ts-expect-error: the payload has no field "email"
void recorder.emitted('kit-user-added')[0]!.data.email;
// @ts-expect-error: not a type this bus declared
recorder.emitted('kit-user-removed');

// signedRequest needs the receiving service's secret.
// @ts-expect-error: secret is required
signedRequest('kit-user-added', { user_id: 'u1' }, {});
const body: string = signedRequest('kit-user-added', { user_id: 'u1' }, { secret: network.secret }).body;
void body;

// assertCompatible takes two AsyncAPI documents, as bus.asyncapi() returns them or parsed from JSON.
assertCompatible(users.asyncapi(), JSON.parse('{}') as unknown);
// @ts-expect-error: both documents are needed
assertCompatible(users.asyncapi());

/**
 * Compiled by scripts/check-packed-consumer.js in an empty project where the PACKED package is
 * installed beside express and typescript only (no optional peers: no Koa, pg, amqplib, kafkajs,
 * undici, better-sqlite3 or @opentelemetry/api), with skipLibCheck off: an Express-only user's
 * types must not break.
 */
import express from 'express';
import { createEventBus, eventsMiddleware, type EmitReceipt } from 'events-library';

const app = express();
app.use(eventsMiddleware());
const bus = createEventBus({ service: 'users' });
app.use(bus.expressMiddleware({ path: '/hooks' }));
const receipt: Promise<EmitReceipt> = bus.emit('user-created', { user_id: 'u1' });
void receipt;

// The test kit's types, from the built package as well.
import { createTestNetwork, recordEmits, signedRequest } from 'events-library/testing';

const network = createTestNetwork();
const users = network.bus('users').declareEvent('user-created', ['payments']);
const recorder = recordEmits(users);
const count: number = recorder.emitted('user-created').length;
const signed: { headers: Record<string, string>; body: string } = signedRequest('user-created', { user_id: 'u1' }, { secret: network.secret });
const settled: Promise<void> = network.settled();
void count;
void signed;
void settled;

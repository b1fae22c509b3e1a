/**
 * Compiled by scripts/check-package.js against the BUILT package (dist/) with skipLibCheck off
 * and no Koa types loaded: an Express-only user's types must not break.
 */
import express from 'express';
import { createEventBus, eventsMiddleware, type EmitReceipt } from '../../dist/index.js';

const app = express();
app.use(eventsMiddleware());
const bus = createEventBus({ service: 'users' });
app.use(bus.expressMiddleware({ path: '/hooks' }));
const receipt: Promise<EmitReceipt> = bus.emit('user-created', { user_id: 'u1' });
void receipt;

import express from 'express';
import { createEventBus, type EventBus } from '../../src/index.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { createCapturingLogger } from '../helpers/logger.js';
import { post } from '../helpers/http-client.js';
import { startServer } from '../helpers/server.js';
import { newSecret, signedStructured, structuredEvent } from '../helpers/signing.js';

/**
 * Issue 6 item 1, the replay that dedupe cannot see: an in-memory inbox forgets on restart and
 * beyond its last `inbox.maxEntries` ids. A captured request replayed inside its 5-minute
 * signature window after that must not run its handlers again; a real sender, which signs every
 * try afresh, still gets through.
 */

const cleanups = cleanupAfterEach();

/** Waits into the next whole second (webhook-timestamp counts seconds). */
const nextSecond = () => new Promise((resolve) => setTimeout(resolve, 1001 - (Date.now() % 1000)));

async function receiver(secret: string, maxEntries?: number) {
  const runs: string[] = [];
  const log = createCapturingLogger();
  const bus: EventBus = createEventBus({ service: 'payments', secret, logger: log.logger, inbox: maxEntries ? { maxEntries } : {} });
  bus.subscribeTo('user-created', (_data, event) => void runs.push(event.id));
  const server = await startServer(express().use(bus.expressMiddleware()));
  const stop = async () => {
    await server.close();
    await bus.close();
  };
  cleanups.push(stop);
  return { runs, log, url: server.url, stop };
}

function captured(secret: string, signedAt: Date) {
  const event = structuredEvent('user-created', { user_id: 'u1' });
  return { id: String(event.id), request: signedStructured(secret, event, signedAt) };
}

describe('a captured request replayed after the in-memory inbox forgot it', () => {
  it('after a restart: refused (503, sign again), the handler does not run again; a freshly signed retry is accepted', async () => {
    const secret = newSecret();
    const first = await receiver(secret);
    const { id, request } = captured(secret, new Date());
    expect((await post(first.url, request)).status).toBe(200);
    expect(first.runs).toEqual([id]);
    await first.stop();
    await nextSecond(); // the restart comes at least a second after the capture

    const restarted = await receiver(secret);
    const replay = await post(restarted.url, request);
    expect(replay.status).toBe(503);
    expect(replay.body).toMatchObject({ error: 'signed_before_inbox_memory' });
    expect(restarted.runs).toEqual([]);

    // What a real sender does on 503: the same event, signed again now. It is a new delivery to
    // a receiver that forgot the id, so it runs (at-least-once), which is the documented trade-off.
    const resigned = signedStructured(secret, JSON.parse(request.body) as Record<string, unknown>);
    expect((await post(restarted.url, resigned)).status).toBe(200);
    expect(restarted.runs).toEqual([id]);
  });

  it('after its id was evicted by newer ones: refused, the handler does not run again', async () => {
    const secret = newSecret();
    const r = await receiver(secret, 2);
    const { id, request } = captured(secret, new Date());
    expect((await post(r.url, request)).status).toBe(200);
    for (let i = 0; i < 2; i += 1) {
      expect((await post(r.url, captured(secret, new Date()).request)).status).toBe(200);
    }
    const replay = await post(r.url, request);
    expect(replay.status).toBe(503);
    expect(r.runs.filter((run) => run === id)).toHaveLength(1);
  });

  it('a request signed now is never refused by a receiver that just started', async () => {
    const secret = newSecret();
    const r = await receiver(secret);
    const { id, request } = captured(secret, new Date());
    expect((await post(r.url, request)).status).toBe(200);
    expect(r.runs).toEqual([id]);
  });
});

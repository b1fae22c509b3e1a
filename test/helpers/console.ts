import { describeWithService } from './describe-with-service.js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { Logger } from 'winston';
import { createEventBus, type EventBus, type Transport } from '../../src/index.js';
import { quietLogger } from './logger.js';
import { startRecordingServer, type RecordingServer } from './recording-server.js';
import { freePort, startServer, type TestServer } from './server.js';
import { newSecret } from './signing.js';
import { waitFor } from './wait.js';

/**
 * The operations console in a real Chromium (the system's `chromium` package, driven by
 * playwright-core), and the service it shows: shared by test/browser/, the screenshot script
 * (scripts/console-screenshot.ts) and the bench (bench/console.ts), so all three see one setup.
 */

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export function chromiumAvailable(): boolean {
  try {
    execFileSync(CHROMIUM, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** `describe`, or outside CI a skipped describe with a message when Chromium is missing (in CI, `CI=true`, a failing test). */
export function describeWithChromium(name: string, body: () => void): void {
  describeWithService(name, body, {
    available: chromiumAvailable,
    needs: 'needs Chromium (.ci/run installs it)',
    missing: `no Chromium at ${CHROMIUM}`,
    fix: 'apt-get install -y chromium',
  });
}

export interface TestBrowser {
  context: BrowserContext;
  /** A new tab with no cookies from earlier tabs. */
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

/** Chromium with a fresh user-data directory, removed on close. */
export async function openBrowser(viewport = { width: 1280, height: 800 }): Promise<TestBrowser> {
  const dir = mkdtempSync(join(tmpdir(), 'events-console-chromium-'));
  const context = await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport });
  return {
    context,
    async newPage() {
      await context.clearCookies();
      return context.newPage();
    },
    async close() {
      await context.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const OPERATOR = 'alice';
export const TOKEN = 'console-token-for-alice-0123456789';

/** What the target `payments` answers: a refusal (400, this body) or a receipt. */
export interface PaymentsReply {
  refuse: boolean;
  body: string;
}

export interface ConsoleScenario {
  /** `users`, which emits to `payments` (a recording server) and `orders` (nothing listens: down). */
  bus: EventBus;
  server: TestServer;
  /** `http://127.0.0.1:<port>/events/console` */
  consoleUrl: string;
  payments: RecordingServer;
  reply: PaymentsReply;
  /** Emits `user-created` to payments (refused while `reply.refuse`) and waits for it to be a dead letter. */
  deadLetter(data?: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

/**
 * `users` behind Express on 127.0.0.1, its console unlocked by `tokens: { alice: TOKEN }`, with
 * `email` redacted. `payments` answers `reply` (refusing at first); `orders` is down with a backlog.
 */
export async function startConsoleScenario(logger: Logger = quietLogger()): Promise<ConsoleScenario> {
  const reply: PaymentsReply = { refuse: true, body: '{"error":"invalid_payload","message":"user_id must be a UUID"}' };
  const payments = await startRecordingServer({ then: () => (reply.refuse ? { status: 400, body: reply.body } : { status: 200 }) });
  const ordersPort = await freePort();
  const bus = createEventBus({
    service: 'users',
    secret: newSecret(),
    services: { payments: payments.url, orders: `http://127.0.0.1:${ordersPort}/events` },
    console: { tokens: { [OPERATOR]: TOKEN }, redact: ['email'] },
    batch: false,
    retry: { retries: 0 },
    redelivery: { baseDelayMs: 60_000, maxDelayMs: 60_000, probeMaxDelayMs: 60_000 },
    logger,
    env: {},
    shutdownTimeoutMs: 200,
  });
  bus.declareEvent('user-created', ['payments']);
  bus.declareEvent('order-placed', ['orders']);
  const server = await startServer(express().use(bus.expressMiddleware()));
  return {
    bus,
    server,
    consoleUrl: `${server.url}/console`,
    payments,
    reply,
    async deadLetter(data = { user_id: 'u1', email: 'ada@example.com' }) {
      const { id } = await bus.emit('user-created', data);
      await waitFor(async () => (await bus.deadLetters({ target: 'payments' })).some((letter) => letter.eventId === id), { what: `dead letter ${id}` });
      return id;
    },
    async close() {
      await bus.close();
      await server.close();
      await payments.close();
    },
  };
}

/** Emits to `orders` until health sees it down, with `backlog` deliveries waiting. */
export async function ordersDown(scenario: ConsoleScenario, backlog: number): Promise<void> {
  for (let i = 0; i < backlog; i++) await scenario.bus.emit('order-placed', { order_id: `o${i}` });
  await waitFor(async () => (await scenario.bus.health()).targets.orders?.down, { timeoutMs: 10_000, what: 'orders down' });
}

/** A transport that refuses every event at once: dead letters by the thousand without a network. */
const refuseAll: Transport = {
  send: async () => ({ outcome: 'refused', status: 400, error: 'HTTP 400: {"error":"invalid_payload"}', attempts: 1 }),
  close: async () => {},
};

/** A service whose outbox (in memory, or SQLite at `outboxPath`) holds `count` dead letters to `payments`, its console served on 127.0.0.1. */
export async function startManyDeadLetters(
  count: number,
  { outboxPath, logger = quietLogger() }: { outboxPath?: string; logger?: Logger } = {},
): Promise<{ bus: EventBus; server: TestServer; consoleUrl: string; close(): Promise<void> }> {
  const bus = createEventBus({
    service: 'users',
    secret: newSecret(),
    services: { payments: 'http://127.0.0.1:9/events' },
    console: { tokens: { [OPERATOR]: TOKEN } },
    transport: refuseAll,
    outbox: { maxDeadLetters: count, highWaterMark: 0, ...(outboxPath ? { path: outboxPath } : {}) },
    logger,
    env: {},
    shutdownTimeoutMs: 200,
  });
  bus.declareEvent('user-created', ['payments']);
  for (let i = 0; i < count; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, count - i) }, (_, j) => bus.emit('user-created', { user_id: `u${i + j}` })));
  }
  await waitFor(async () => (await bus.outboxStats()).targets.payments?.deadLetters === count, { timeoutMs: 30_000, what: `${count} dead letters` });
  const server = await startServer(express().use(bus.expressMiddleware()));
  return {
    bus,
    server,
    consoleUrl: `${server.url}/console`,
    async close() {
      await bus.close();
      await server.close();
    },
  };
}

/** Opens the console and signs in with `token` (the page shows the console, or an error in the sign-in form). */
export async function signIn(page: Page, consoleUrl: string, token = TOKEN): Promise<void> {
  await page.goto(consoleUrl);
  await page.getByLabel('Operator token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

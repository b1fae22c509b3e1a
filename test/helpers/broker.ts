import { describeWithService } from './describe-with-service.js';
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import amqplib from 'amqplib';

/**
 * The real RabbitMQ of this machine (127.0.0.1:5672, guest/guest), one vhost per test file so that
 * parallel files never see each other's queues or connection drops. In CI (`CI=true`) a missing
 * broker fails the file; elsewhere the file's tests are skipped with a message.
 */

export const BROKER_HOST = process.env.EVENTS_TEST_BROKER_HOST ?? '127.0.0.1';
export const BROKER_PORT = Number(process.env.EVENTS_TEST_BROKER_PORT ?? 5672);

/**
 * Whether something answers on the broker's port (checked once, before the tests are declared).
 * In CI it keeps trying for a while: another file may hold the broker stopped for a restart test
 * (its turn, takeBrokerTurns) just as this file is loaded.
 */
export function brokerAnswers(): boolean {
  const waitMs = process.env.CI === 'true' || process.env.CI === '1' ? 60_000 : 2_000;
  const probe = `const net = require('net'); const until = Date.now() + ${waitMs};
    const attempt = () => net.connect(${BROKER_PORT}, '${BROKER_HOST}').on('connect', () => process.exit(0))
      .on('error', () => (Date.now() < until ? setTimeout(attempt, 250) : process.exit(1)));
    attempt(); setTimeout(() => process.exit(1), ${waitMs});`;
  try {
    execFileSync(process.execPath, ['-e', probe], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** `describe`, or a skipped describe with a message when no broker answers outside CI. */
export function describeWithBroker(name: string, body: () => void): void {
  describeWithService(name, body, {
    available: brokerAnswers,
    needs: 'needs RabbitMQ on 127.0.0.1:5672 (CI starts it in .ci/run)',
    missing: `no RabbitMQ answers on ${BROKER_HOST}:${BROKER_PORT}`,
    fix: 'start it with rabbitmq-server -detached',
  });
}

function rabbitmqctlAsync(...args: string[]): Promise<void> {
  return new Promise((resolve, reject) => execFile('rabbitmqctl', ['-q', ...args], (error) => (error ? reject(error) : resolve())));
}

function rabbitmqctl(...args: string[]): string {
  return execFileSync('rabbitmqctl', ['-q', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export interface TestVhost {
  name: string;
  /** amqp URL of the vhost. */
  url: string;
  /** Drops every client connection of this vhost (`rabbitmqctl close_all_connections --vhost`), without blocking the event loop. */
  dropConnections(): Promise<void>;
  /** Messages ready in `queue` of this vhost, from the broker itself (passive declare); undefined when it does not exist. */
  messageCount(queue: string): Promise<number | undefined>;
  /** Applies a policy to the queues of this vhost matching `pattern` (`rabbitmqctl set_policy`). */
  setPolicy(name: string, pattern: string, definition: object): Promise<void>;
  clearPolicy(name: string): Promise<void>;
  remove(): void;
}

/** A fresh vhost on which guest has every permission. */
export function createVhost(label: string): TestVhost {
  const name = `events-test-${label}-${randomBytes(4).toString('hex')}`;
  try {
    // One rabbitmqctl call instead of two (each starts an Erlang VM: ≈2 s).
    rabbitmqctl(
      'eval',
      `rabbit_vhost:add(<<"${name}">>, <<"events-tests">>), ` +
        `rabbit_auth_backend_internal:set_permissions(<<"guest">>, <<"${name}">>, <<".*">>, <<".*">>, <<".*">>, <<"events-tests">>).`,
    );
  } catch {
    rabbitmqctl('add_vhost', name);
    rabbitmqctl('set_permissions', '-p', name, 'guest', '.*', '.*', '.*');
  }
  const url = `amqp://guest:guest@${BROKER_HOST}:${BROKER_PORT}/${encodeURIComponent(name)}`;
  const messageCount = async (queue: string): Promise<number | undefined> => {
    const connection = await amqplib.connect(url);
    try {
      const channel = await connection.createChannel();
      channel.on('error', () => undefined);
      return (await channel.checkQueue(queue)).messageCount;
    } catch {
      return undefined;
    } finally {
      await connection.close().catch(() => undefined);
    }
  };
  return {
    name,
    url,
    dropConnections: () => rabbitmqctlAsync('close_all_connections', '--vhost', name, 'test: connection drop'),
    messageCount,
    setPolicy: (policy, pattern, definition) =>
      rabbitmqctlAsync('set_policy', '-p', name, '--apply-to', 'queues', policy, pattern, JSON.stringify(definition)),
    clearPolicy: (policy) => rabbitmqctlAsync('clear_policy', '-p', name, policy),
    remove: () => void rabbitmqctl('delete_vhost', name),
  };
}


const LOCK = path.join(tmpdir(), 'events-library-broker-tests.lock');

/**
 * Makes the broker test files of one run take turns (beforeAll → afterAll), so that a file that
 * restarts the broker (`stop_app`/`start_app`) never disturbs another. A lock left by a dead
 * process is taken over.
 */
export function takeBrokerTurns(): void {
  let held = false;
  beforeAll(async () => {
    for (;;) {
      try {
        writeFileSync(LOCK, String(process.pid), { flag: 'wx' });
        held = true;
        return;
      } catch {
        const owner = Number(readFileSafe(LOCK));
        if (!Number.isInteger(owner) || owner <= 0 || !alive(owner)) rmSync(LOCK, { force: true });
        else await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }, 120_000);
  afterAll(() => {
    if (held) rmSync(LOCK, { force: true });
  });
}

function readFileSafe(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops and starts the RabbitMQ application (every connection drops; durable queues and persistent messages survive). */
export function restartBroker(): { stop(): Promise<void>; start(): Promise<void> } {
  return {
    stop: () => rabbitmqctlAsync('stop_app'),
    start: async () => {
      await rabbitmqctlAsync('start_app');
      await rabbitmqctlAsync('await_startup');
    },
  };
}

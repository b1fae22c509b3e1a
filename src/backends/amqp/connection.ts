import type * as amqplib from 'amqplib';
import type { ChannelModel } from 'amqplib';
import type { BrokerOpenOptions } from '../broker-link.js';
import { loadPeer } from '../../optional-peer.js';
import { type ConnectFailure, describeConnectFailure } from './failures.js';

type Amqplib = typeof amqplib;

/** Runs on every (re)connection, before the connection counts as up: declare, consume. */
export type OnConnect = (model: ChannelModel) => Promise<void>;

/** Loads amqplib, the optional peer dependency, only when a broker is configured. */
export function loadAmqplib(): Amqplib {
  const message = 'EVENTS_BROKER_URL (the broker option) is set, but the optional peer dependency amqplib is not installed: run npm install amqplib@^2';
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return loadPeer(() => require('amqplib'), 'EVENTS_BROKER_URL', message);
}

/**
 * One connection to RabbitMQ with its own reconnect loop: backoff with jitter, and on every
 * (re)connection the registered setups run again (topology re-declared, consumers re-created).
 * An outage is logged once when it starts and once when it ends. Nothing is buffered here: while
 * disconnected, publishers answer "retry" and the outbox keeps the events.
 */
export class AmqpConnection {
  private readonly amqp: Amqplib;
  private model: ChannelModel | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  private everUp = false;
  private downSince: number | undefined;
  /** The last reason the connection failed or closed (for health). */
  lastError: string | undefined;
  private readonly setups = new Set<OnConnect>();
  private readonly waiters = new Set<() => void>();
  private wakeUp: (() => void) | undefined;

  constructor(private readonly o: BrokerOpenOptions) {
    this.amqp = loadAmqplib();
  }

  /** Starts connecting (once); later calls do nothing. */
  start(): void {
    if (this.closed) return;
    this.running ??= this.loop();
  }

  get isUp(): boolean {
    return this.model !== undefined;
  }

  /**
   * The connection if up. Before the first connection succeeds, waits for it up to `timeoutMs`;
   * once it has been up, a lost connection answers undefined at once (callers retry later).
   */
  async ready(timeoutMs: number): Promise<ChannelModel | undefined> {
    this.start();
    if (this.model || this.closed || this.everUp) return this.model;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.waiters.add(done);
    });
    return this.model;
  }

  /** Runs `setup` on every connection from now on (and now, if up: a failure then starts over on a new connection). */
  onConnect(setup: OnConnect): void {
    this.setups.add(setup);
    const model = this.model;
    if (model) {
      setup(model).catch((error: unknown) => this.reset(model, `setup failed: ${(error as Error)?.message ?? String(error)}`));
    }
  }

  offConnect(setup: OnConnect): void {
    this.setups.delete(setup);
  }

  /**
   * Drops `model` if it is still the current connection, so that the loop reconnects and every
   * setup runs again (a channel failed while its connection stayed up). Checked on the next turn:
   * when the whole connection is closing, its channels close first, and nothing is to be done.
   */
  reset(model: ChannelModel, reason: string): void {
    setImmediate(() => {
      if (this.model !== model || this.closed) return;
      this.o.logger.warn('broker channel lost; reconnecting', { error: reason });
      void model.close().catch(() => undefined);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wakeUp?.();
    for (const wake of [...this.waiters]) wake();
    const model = this.model;
    this.model = undefined;
    await model?.close().catch(() => undefined);
    await this.running;
  }

  private async loop(): Promise<void> {
    const { broker, logger, name, timeoutMs } = this.o;
    let failures = 0;
    while (!this.closed) {
      let model: ChannelModel | undefined;
      try {
        model = await this.connect(broker.url, name, timeoutMs);
        let lost: (error?: Error) => void = () => undefined;
        const closed = new Promise<Error | undefined>((resolve) => (lost = resolve));
        model.on('error', () => undefined); // a 'close' follows, which is what we act on
        model.on('close', (error?: Error) => lost(error));
        model.on('blocked', (reason: string) => logger.warn('broker blocked publishing (resource alarm)', { reason }));
        model.on('unblocked', () => logger.info('broker unblocked publishing'));
        for (const setup of [...this.setups]) await setup(model);
        if (this.closed) {
          await model.close().catch(() => undefined);
          return;
        }
        this.model = model;
        failures = 0;
        this.up();
        const error = await closed;
        this.model = undefined;
        if (this.closed) return;
        this.down({ message: error?.message ?? 'connection closed', permanent: false }, 0);
      } catch (error) {
        if (model) void model.close().catch(() => undefined);
        this.model = undefined;
        broker.tls?.recheck();
        if (this.closed) return;
        failures += 1;
        this.down(model ? { message: (error as Error)?.message ?? String(error), permanent: false } : describeConnectFailure(error, broker.url), failures);
      }
      await this.sleep(backoff(failures, broker.reconnectBaseDelayMs, broker.reconnectMaxDelayMs));
    }
  }

  /**
   * Connects, bounded by `timeoutMs` including the AMQP handshake (a broker that is starting up can
   * accept the socket and then say nothing): a connection that completes after the deadline is closed.
   */
  private connect(url: string, name: string, timeoutMs: number): Promise<ChannelModel> {
    // amqps:// connects with the bus's `tls` (EVENTS_TLS_*), read anew for each connection (rotation).
    const tls = url.trim().toLowerCase().startsWith('amqps:') ? this.o.broker.tls?.current() : undefined;
    const connecting = this.amqp.connect(withHeartbeat(url), { ...tls, timeout: timeoutMs, clientProperties: { connection_name: name } });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        void connecting.then((late) => late.close()).catch(() => undefined);
        reject(new Error(`no answer from the broker within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    return Promise.race([connecting, deadline]).finally(() => clearTimeout(timer));
  }

  private up(): void {
    if (this.downSince !== undefined) {
      this.o.logger.info('broker connection restored', { downMs: Date.now() - this.downSince });
    }
    this.downSince = undefined;
    this.everUp = true;
    for (const wake of [...this.waiters]) wake();
  }

  /**
   * An outage is logged once as it starts (warn). A refusal that retrying will not heal (credentials,
   * vhost) is an error at the 1st, 2nd, 4th, 8th… failure in a row, as the backoff grows.
   */
  private down(failure: ConnectFailure, failures: number): void {
    if (failure.permanent && (failures & (failures - 1)) === 0) {
      this.o.logger.error('broker refused the connection; retrying', { error: failure.message, failures });
    }
    this.lastError = failure.message;
    if (this.downSince !== undefined) return;
    this.downSince = Date.now();
    if (failure.permanent) return;
    this.o.logger.warn(this.everUp ? 'broker connection lost; reconnecting' : 'broker unreachable; retrying', { error: failure.message });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

/** Heartbeats every 10 s unless the URL sets them, so a silently dead connection is noticed in ≈20 s rather than minutes. */
function withHeartbeat(url: string): string {
  const parsed = new URL(url);
  if (!parsed.searchParams.has('heartbeat')) parsed.searchParams.set('heartbeat', String(HEARTBEAT_S));
  return parsed.toString();
}

const HEARTBEAT_S = 10;

/** Exponential backoff with ±20 % jitter; `failures` 0 (a connection that was up just dropped) waits the base. */
function backoff(failures: number, baseMs: number, maxMs: number): number {
  const ms = Math.min(maxMs, baseMs * 2 ** Math.max(0, failures - 1));
  return Math.round(ms * (0.8 + Math.random() * 0.4));
}

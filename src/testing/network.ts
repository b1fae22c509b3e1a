import { randomBytes } from 'node:crypto';
import type { Logger } from 'winston';
import { createEventBus, type EventBus } from '../bus.js';
import type { EventBusOptions, RedeliveryOptions, RetryOptions, SecretInput, ServiceEntry } from '../config.js';
import { DEFAULTS } from '../defaults.js';
import { ConfigError } from '../errors/index.js';
import type { DeadLetter, OutboxStats } from '../operate/operator.js';
import type { EventRegistry } from '../types.js';
import { type InProcessRoute, InProcessTransport } from './in-process-transport.js';
import { type EmitRecorder, type RecordedEmit, sequencedEmits } from './record-emits.js';

export interface TestNetworkOptions {
  /** The secret every bus of the network signs and verifies with. @default a random `whsec_…` per network */
  secret?: SecretInput;
  /** Logger of every bus of the network. @default JSON lines on the console at `logLevel` */
  logger?: Logger;
  /** Level of the default logger. @default 'error' */
  logLevel?: string;
  /** Immediate retries of one delivery. @default { retries: 3, baseDelayMs: 10, maxDelayMs: 100, maxRetryAfterMs: 10000 } */
  retry?: Partial<RetryOptions>;
  /** Redelivery from the outbox. @default { baseDelayMs: 50, maxDelayMs: 1000, probeMaxDelayMs: 500 }, production horizon */
  redelivery?: Partial<RedeliveryOptions>;
  /** How long `settled()` waits by default before failing with what is still pending. @default 4000 */
  settleTimeoutMs?: number;
}

export interface SettleOptions {
  /** @default the network's `settleTimeoutMs` (4000) */
  timeoutMs?: number;
}

/** A dead letter, with the service whose outbox holds it. */
export interface NetworkDeadLetter extends DeadLetter {
  /** The service that emitted the event (the outbox it sits in). */
  service: string;
}

/** A recorded emit of any bus of the network (`source` says which). */
export type NetworkEmit = RecordedEmit;

/** What the network uses of a bus (any `EventBus<…>`, whatever its event map). */
export type NetworkBus = Pick<EventBus<object>, 'service' | 'handle' | 'outboxStats' | 'deadLetters' | 'close'>;

/** Host of the URLs the network's buses see for their targets: never resolved, never connected to. */
const IN_PROCESS_ORIGIN = 'http://in-process.invalid';

/**
 * Several buses, one per service, wired together without sockets: a delivery is signed and
 * handed to the target bus's `handle()`, so signatures, validation, dedupe, handler outcomes,
 * retries and dead letters are the real ones. Create one per test (or per file) and close it.
 *
 * @example
 * const network = createTestNetwork();
 * const users = network.bus('users').declareEvent('user-created', ['payments']);
 * const payments = network.bus('payments');
 * payments.subscribeTo('user-created', handler);
 * await users.emit('user-created', { user_id: 'u1' });
 * await network.settled();
 */
export class TestNetwork {
  readonly secret: SecretInput;
  private readonly buses = new Map<string, NetworkBus>();
  /** Each bus's transport, with the service it sends for. */
  private readonly transports = new Map<InProcessTransport, string>();
  private readonly retry: RetryOptions;
  private readonly redelivery: Partial<RedeliveryOptions>;
  private readonly settleTimeoutMs: number;

  constructor(private readonly networkOptions: TestNetworkOptions = {}) {
    this.secret = networkOptions.secret ?? `whsec_${randomBytes(24).toString('base64')}`;
    this.retry = { ...DEFAULTS.testing.retry, ...networkOptions.retry };
    this.redelivery = { ...DEFAULTS.testing.redelivery, ...networkOptions.redelivery };
    this.settleTimeoutMs = networkOptions.settleTimeoutMs ?? DEFAULTS.testing.settleTimeoutMs;
  }

  /**
   * `createEventBus` options for service `service` on this network: its name, the network's
   * secret and logger, an in-process transport, a URL for every target (never connected to), and
   * no `EVENTS_*` variables from the environment (`env: {}`). Anything in `overrides` wins.
   * Pass them to your own service factory, then `add()` the bus it made.
   */
  options(service: string, overrides: EventBusOptions = {}): EventBusOptions {
    const transport = new InProcessTransport({ route: (name) => this.route(name), retry: this.retry });
    this.transports.set(transport, service);
    const explicit = overrides.services ?? {};
    const services = new Proxy(explicit, {
      get: (entries, name): string | ServiceEntry | undefined => {
        if (typeof name !== 'string') return undefined;
        return entries[name] ?? `${IN_PROCESS_ORIGIN}/${encodeURIComponent(name)}/events`;
      },
    });
    const logging: EventBusOptions = this.networkOptions.logger
      ? { logger: this.networkOptions.logger }
      : { logLevel: this.networkOptions.logLevel ?? DEFAULTS.testing.logLevel };
    return {
      service,
      secret: this.secret,
      ...logging,
      env: {},
      transport,
      ...overrides,
      redelivery: { ...this.redelivery, ...overrides.redelivery },
      services,
    };
  }

  /** Creates the bus of `service` on this network (see `options`) and adds it. */
  bus<Events extends object = EventRegistry>(service: string, overrides: EventBusOptions = {}): EventBus<Events> & Pick<EmitRecorder<Events>, 'emitted'> {
    return this.add(createEventBus<Events>(this.options(service, overrides))) as EventBus<Events> & Pick<EmitRecorder<Events>, 'emitted'>;
  }

  /**
   * Adds a bus made with `network.options(name)`: deliveries to `name` reach it, `settled()`
   * watches its outbox, and its emits are recorded. Returns the bus.
   */
  add<B extends NetworkBus>(bus: B): B {
    const name = bus.service;
    if (name === undefined) throw new ConfigError('network.add(bus): the bus has no service name (create it with network.options(name))');
    const existing = this.buses.get(name);
    if (existing !== undefined && existing !== bus) throw new ConfigError(`network.add(bus): the network already has a service "${name}"`);
    this.buses.set(name, bus);
    sequencedEmits(bus); // starts recording
    return bus;
  }

  /** The bus of `service`, if added. */
  get(service: string): NetworkBus | undefined {
    return this.buses.get(service);
  }

  /** What every bus of the network emitted, in order; or only events of `type`. */
  emitted(type?: string): NetworkEmit[] {
    const all = [...this.buses.values()].flatMap((bus) => sequencedEmits(bus));
    return all
      .filter((e) => type === undefined || e.type === type)
      .sort((a, b) => a.sequence - b.sequence)
      .map(({ sequence: _sequence, ...emit }) => emit);
  }

  /** Forgets what was recorded so far. */
  clearEmitted(): void {
    for (const bus of this.buses.values()) sequencedEmits(bus).length = 0;
  }

  /**
   * Resolves when every outbox of the network holds no pending delivery (each delivered or a dead
   * letter) and no delivery or handler runs; rejects after `timeoutMs` naming what is pending.
   */
  async settled(options: SettleOptions = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? this.settleTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    let quietPolls = 0;
    for (;;) {
      const pending = await this.pending();
      // Quiet twice in a row: work kicked for the next turn of the event loop has had its turn.
      quietPolls = pending.length === 0 && this.inFlight() === 0 ? quietPolls + 1 : 0;
      if (quietPolls >= 2) return;
      if (Date.now() > deadline) {
        const what = pending.length > 0 ? pending.join('; ') : `${this.inFlight()} delivery(ies) still running`;
        throw new Error(`network.settled(): not settled within ${timeoutMs} ms: ${what}`);
      }
      await new Promise((resolve) => setTimeout(resolve, DEFAULTS.testing.settlePollMs));
    }
  }

  /** Every dead letter of every bus of the network. */
  async deadLetters(): Promise<NetworkDeadLetter[]> {
    const letters: NetworkDeadLetter[] = [];
    for (const [service, bus] of this.buses) {
      for (const letter of await bus.deadLetters()) letters.push({ ...letter, service });
    }
    return letters;
  }

  /** Closes every bus of the network. */
  async close(): Promise<void> {
    await Promise.all([...this.buses.values()].map((bus) => bus.close()));
  }

  private route(name: string): ReturnType<InProcessRoute> {
    const bus = this.buses.get(name);
    return bus && ((request) => bus.handle(request));
  }

  /** Why the last delivery from `service` to `target` failed, if one did. */
  private lastFailure(service: string, target: string): string | undefined {
    for (const [transport, sender] of this.transports) {
      const why = sender === service ? transport.failures.get(target) : undefined;
      if (why) return `last failure: ${why}`;
    }
    return undefined;
  }

  private inFlight(): number {
    let n = 0;
    for (const transport of this.transports.keys()) n += transport.inFlight;
    return n;
  }

  /** "service → target: n pending", and why the last send failed, for every outbox with pending deliveries. */
  private async pending(): Promise<string[]> {
    const lines: string[] = [];
    for (const [service, bus] of this.buses) {
      let stats: OutboxStats;
      try {
        stats = await bus.outboxStats();
      } catch {
        continue; // a closed durable outbox: nothing will move in it
      }
      if (stats.pending === 0) continue;
      for (const [target, counts] of Object.entries(stats.targets)) {
        if (counts.pending === 0) continue;
        const why = this.buses.has(target) ? this.lastFailure(service, target) : `no service "${target}" in the network`;
        lines.push(`${service} → ${target}: ${counts.pending} pending${why ? ` (${why})` : ''}`);
      }
    }
    return lines;
  }
}

/** Creates an in-process network of buses for tests (see TestNetwork). */
export function createTestNetwork(options: TestNetworkOptions = {}): TestNetwork {
  return new TestNetwork(options);
}

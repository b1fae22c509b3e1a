/**
 * Issue 20 item 3: events-library/nestjs in a Nest application as its users write one (legacy
 * decorators, emitDecoratorMetadata: jest.config.js, test/nestjs/tsconfig.json), on Express and on
 * Fastify: providers' @subscribeTo methods receive signed events through the mounted receiver, the
 * bus injected with @InjectEventBus() emits to another Nest application, app.close() closes the bus.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { Inject, Injectable, Module, type OnModuleInit } from '@nestjs/common';
import { BusClosedError, ConfigError, subscribeTo, type EventBus, type ReceivedEvent } from '../../src/index.js';
import { EVENT_BUS, EventsModule, InjectEventBus } from '../../src/nestjs/index.js';
import { cleanupAfterEach } from '../helpers/cleanups.js';
import { UserIdSchema } from '../helpers/user-id-events.js';
import { request } from '../helpers/http-client.js';
import { createCapturingLogger, quietLogger } from '../helpers/logger.js';
import { serveNest, type NestPlatform } from '../helpers/nest-mounts.js';
import { newSecret, signedStructured, structuredEvent } from '../helpers/signing.js';
import { waitFor } from '../helpers/wait.js';

const cleanups = cleanupAfterEach();
const UserCreated = UserIdSchema;
type User = { user_id: string };

@Injectable()
class Billing {
  readonly seen: string[] = [];

  @subscribeTo('user-created', { schema: UserCreated })
  async openAccount(data: User, event: ReceivedEvent<User>): Promise<void> {
    this.seen.push(`${event.type} ${data.user_id}`); // `this`: the instance Nest built
  }

  @subscribeTo('user-deleted')
  async closeAccount(): Promise<void> {
    throw new Error('accounts cannot be closed yet');
  }
}

@Injectable()
class Users {
  constructor(@InjectEventBus() private readonly bus: EventBus) {}

  create(id: string) {
    return this.bus.emit('user-created', { user_id: id });
  }
}

/** Where forRootAsync's factory takes the options from, as a ConfigService would. */
@Injectable()
class Settings {
  readonly values = new Map<string, string>();
}

function settingsModule(values: Record<string, string>) {
  @Module({ providers: [{ provide: Settings, useFactory: () => Object.assign(new Settings(), { values: new Map(Object.entries(values)) }) }], exports: [Settings] })
  class SettingsModule {}
  return SettingsModule;
}

describe.each<NestPlatform>(['express', 'fastify'])('EventsModule on Nest with %s', (platform) => {
  async function billingApp(secret: string) {
    const log = createCapturingLogger();
    @Module({ imports: [EventsModule.forRoot({ service: 'billing', secret, env: {}, logger: log.logger })], providers: [Billing] })
    class BillingModule {}
    const server = await serveNest(BillingModule, platform);
    cleanups.push(() => server.close());
    return { server, log, billing: server.app.get(Billing), bus: server.app.get<EventBus>(EVENT_BUS) };
  }

  it("subscribes providers' decorated methods with their instance, as ClassName.methodName, and receives signed events", async () => {
    const secret = newSecret();
    const { server, log, billing } = await billingApp(secret);
    const created = await request(server.url, signedStructured(secret, structuredEvent('user-created', { user_id: 'u_1' })));
    expect(created.status).toBe(200);
    expect(billing.seen).toEqual(['user-created u_1']);

    const invalid = await request(server.url, signedStructured(secret, structuredEvent('user-created', { id: 1 })));
    expect(invalid.status).toBe(400); // the decorator's schema holds

    const deleted = await request(server.url, signedStructured(secret, structuredEvent('user-deleted', { user_id: 'u_1' })));
    expect(deleted.status).toBeGreaterThanOrEqual(500);
    expect(log.withMessage('handler failed')).toEqual([expect.objectContaining({ handler: 'Billing.closeAccount' })]);

    const health = await request(`${server.url}/health`, { method: 'GET' });
    expect([health.status, health.json]).toEqual([200, { healthy: true }]);
  });

  it('emits through the bus injected with @InjectEventBus(), to another Nest application (forRootAsync options)', async () => {
    const secret = newSecret();
    const receiver = await billingApp(secret);

    @Injectable()
    class DeclareEvents implements OnModuleInit {
      constructor(@Inject(EVENT_BUS) private readonly bus: EventBus) {}
      onModuleInit(): void {
        this.bus.declareEvent('user-created', ['billing'], { schema: UserCreated });
      }
    }
    const Config = settingsModule({ BILLING_URL: receiver.server.url, SECRET: secret });
    @Module({
      imports: [
        EventsModule.forRootAsync({
          imports: [Config],
          inject: [Settings],
          useFactory: async (settings: Settings) => ({ service: 'users', env: {}, logger: quietLogger(), services: { billing: { url: settings.values.get('BILLING_URL')!, secret: settings.values.get('SECRET')! } } }),
        }),
      ],
      providers: [Users, DeclareEvents],
    })
    class UsersModule {}
    const sender = await serveNest(UsersModule, platform);
    cleanups.push(() => sender.close());

    const receipt = await sender.app.get(Users).create('u_7');
    expect(receipt.targets).toEqual(['billing']);
    await waitFor(() => receiver.billing.seen.length === 1, { what: 'the event delivered to the billing app' });
    expect(receiver.billing.seen).toEqual(['user-created u_7']);
  });

  it('closes the bus when the application shuts down', async () => {
    const { server, bus } = await billingApp(newSecret());
    await expect(bus.health()).resolves.toMatchObject({ healthy: true });
    await server.close(); // app.close(): what enableShutdownHooks() calls on SIGTERM/SIGINT
    await expect(bus.emit('user-created', { user_id: 'u_1' })).rejects.toBeInstanceOf(BusClosedError);
  });

  it('refuses to start when a provider subscribes but the service has no secret to verify events with', async () => {
    @Module({ imports: [EventsModule.forRoot({ service: 'billing', env: {}, logger: quietLogger() })], providers: [Billing] })
    class NoSecretModule {}
    const started = serveNest(NoSecretModule, platform);
    await expect(started).rejects.toThrow(ConfigError);
    await expect(started).rejects.toMatchObject({ variable: 'EVENTS_SECRET' });
  });
});

it('closes the bus on SIGTERM with enableShutdownHooks(), and the process ends', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'fixtures', 'shutdown-app.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  const ended = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
  await new Promise<void>((resolve) =>
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('listening')) resolve();
    }),
  );
  child.kill('SIGTERM');
  expect(await ended).toBe('SIGTERM');
  expect(output.split('\n')).toEqual(['listening', 'bus closed', '']);
});

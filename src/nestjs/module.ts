import type { DynamicModule, FactoryProvider, ModuleMetadata, Provider } from '@nestjs/common';
import type { DiscoveryService, HttpAdapterHost } from '@nestjs/core';
import { createEventBus, type EventBus } from '../bus.js';
import { ConfigError } from '../errors/index.js';
import { decoratedMethods } from '../subscribe-decorator.js';
import type { EventBusOptions } from '../config.js';
import { loadNest } from './load.js';

/** The injection token of the application's bus: `@InjectEventBus()`, or `@Inject(EVENT_BUS)`. */
export const EVENT_BUS = 'events-library:EVENT_BUS';
const OPTIONS = 'events-library:EVENT_BUS_OPTIONS';

/** `EventsModule.forRootAsync(...)`: the bus's options from a factory, with what it injects and the modules that provide it. */
export interface EventsModuleAsyncOptions extends Pick<FactoryProvider<EventBusOptions | Promise<EventBusOptions>>, 'useFactory' | 'inject'> {
  imports?: ModuleMetadata['imports'];
}

/** Injects the application's bus (`EVENT_BUS`), for `emit`: `constructor(@InjectEventBus() private readonly bus: EventBus) {}`. */
export function InjectEventBus(): PropertyDecorator & ParameterDecorator {
  return loadNest('@nestjs/common').Inject(EVENT_BUS);
}

/**
 * One bus per application (global): its receiver mounted on the Nest HTTP adapter (Express or
 * Fastify), the `@subscribeTo` methods of every provider subscribed with their instance, closed
 * when the application shuts down (`app.close()`, or a signal with `enableShutdownHooks()`).
 */
export class EventsModule {
  static forRoot(options: EventBusOptions): DynamicModule {
    return eventsModule({ provide: OPTIONS, useValue: options }, []);
  }

  static forRootAsync(options: EventsModuleAsyncOptions): DynamicModule {
    return eventsModule({ provide: OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] }, options.imports ?? []);
  }
}

function eventsModule(options: Provider, imports: NonNullable<ModuleMetadata['imports']>): DynamicModule {
  const { DiscoveryModule, DiscoveryService, HttpAdapterHost } = loadNest('@nestjs/core');
  return {
    module: EventsModule,
    global: true,
    imports: [DiscoveryModule, ...imports],
    providers: [
      options,
      { provide: EVENT_BUS, useFactory: (resolved: EventBusOptions) => createEventBus(resolved), inject: [OPTIONS] },
      {
        provide: EventsLifecycle,
        useFactory: (bus: EventBus, discovery: DiscoveryService, host: HttpAdapterHost) => new EventsLifecycle(bus, discovery, host),
        inject: [EVENT_BUS, DiscoveryService, HttpAdapterHost],
      },
    ],
    exports: [EVENT_BUS],
  };
}

/** The module's lifecycle hooks, which Nest calls on the providers it built. */
class EventsLifecycle {
  /** Why the receiver is not mounted (no secret of this service's own: it only sends), thrown if a provider subscribes. */
  private readonly unmounted?: ConfigError;

  /** Built while Nest creates the providers, before `app.init()` adds its body parsers: the receiver comes first, reading the raw bytes. */
  constructor(
    private readonly bus: EventBus,
    private readonly discovery: DiscoveryService,
    host: HttpAdapterHost,
  ) {
    const adapter = host.httpAdapter; // none in an application context (createApplicationContext)
    try {
      if (adapter?.getType() === 'fastify') {
        (adapter.getInstance() as { register(plugin: unknown): unknown }).register(bus.fastifyPlugin());
      } else {
        adapter?.use(bus.expressMiddleware());
      }
    } catch (error) {
      if (!(error instanceof ConfigError && error.variable === 'EVENTS_SECRET')) throw error;
      this.unmounted = error;
    }
  }

  onModuleInit(): void {
    const seen = new Set<object>();
    for (const wrapper of this.discovery.getProviders()) {
      const instance: unknown = wrapper.isDependencyTreeStatic() ? wrapper.instance : undefined;
      if (typeof instance !== 'object' || instance === null || seen.has(instance)) continue;
      seen.add(instance); // one instance under two tokens (useExisting) subscribes once
      if (decoratedMethods(instance).length === 0) continue;
      if (this.unmounted) throw this.unmounted;
      this.bus.register(instance);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.bus.close();
  }
}

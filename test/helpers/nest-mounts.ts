import http, { type RequestListener } from 'node:http';
import { Controller, Get, HttpCode, Module, Post, type DynamicModule, type INestApplication, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { EventBus } from '../../src/index.js';
import { EVENT_BUS, EventsModule } from '../../src/nestjs/index.js';
import { startServer, type TestServer } from './server.js';

/**
 * A Nest application (on Express or on Fastify) whose EventsModule mounts `bus` (in place of the bus
 * it would build), beside a controller answering `GET /events` and `POST /other` with 299, as the
 * other mounts' apps do. Decorated by calls, not syntax: this file compiles with standard decorators.
 */
export async function startNest(bus: EventBus, platform: NestPlatform): Promise<TestServer> {
  class AppRoutes {
    events(): string {
      return 'app: GET /events';
    }
    other(): string {
      return 'app: POST /other';
    }
  }
  decorate(AppRoutes, 'events', Get('events'), HttpCode(299));
  decorate(AppRoutes, 'other', Post('other'), HttpCode(299));
  Controller()(AppRoutes);
  class AppModule {}
  Module({ imports: [withBus(EventsModule.forRoot({}), bus)], controllers: [AppRoutes] })(AppModule);
  return serveNest(AppModule, platform);
}

export type NestPlatform = 'express' | 'fastify';

/** Creates and initialises a Nest application of `module` on `platform` and serves it on 127.0.0.1; closing it closes the application. */
export async function serveNest(module: Type, platform: NestPlatform): Promise<TestServer & { app: INestApplication }> {
  let listener: RequestListener | undefined;
  const adapter = platform === 'fastify' ? new FastifyAdapter({ serverFactory: (handler: RequestListener) => ((listener = handler), http.createServer(handler)) }) : undefined;
  const app = adapter ? await NestFactory.create(module, adapter, { logger: false, abortOnError: false }) : await NestFactory.create(module, { logger: false, abortOnError: false });
  await app.init();
  const instance = app.getHttpAdapter().getInstance() as RequestListener & { ready?: () => Promise<unknown> };
  if (adapter) await instance.ready!();
  const server = await startServer(listener ?? instance);
  return {
    ...server,
    app,
    close: async () => {
      await server.close();
      await app.close();
    },
  };
}

/** The module with `bus` provided as EVENT_BUS instead of one built from its options. */
export function withBus(module: DynamicModule, bus: EventBus): DynamicModule {
  const providers = module.providers!.map((provider) => ((provider as { provide?: unknown }).provide === EVENT_BUS ? { provide: EVENT_BUS, useValue: bus } : provider));
  return { ...module, providers };
}

function decorate(target: Type, method: string, ...decorators: MethodDecorator[]): void {
  const descriptor = Object.getOwnPropertyDescriptor(target.prototype, method)!;
  for (const decorator of decorators.reverse()) decorator(target.prototype as object, method, descriptor);
}

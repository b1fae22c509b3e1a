// events-library/nestjs: the NestJS module. @nestjs/common and @nestjs/core are optional peers,
// loaded when a module is built (src/nestjs/load.ts), so the rest of the library never loads them.
export { EVENT_BUS, EventsModule, InjectEventBus } from './module.js';
export type { EventsModuleAsyncOptions } from './module.js';

import type * as NestCommon from '@nestjs/common';
import type * as NestCore from '@nestjs/core';
import { ConfigError } from '../errors/index.js';

/**
 * Loads the application's @nestjs/common or @nestjs/core (11, CommonJS, or 12, ESM-only) with
 * `require`: Node (≥ 20.19, ≥ 22.12) requires an ES module synchronously, so one CommonJS build
 * serves both majors; a Nest class is a DI token, so this must be the application's own copy.
 */
export function loadNest(name: '@nestjs/common'): typeof NestCommon;
export function loadNest(name: '@nestjs/core'): typeof NestCore;
export function loadNest(name: string): unknown {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(name);
  } catch (cause) {
    throw new ConfigError(`events-library/nestjs needs the peer dependency ${name} (^11 or ^12): run npm install ${name}`, { cause });
  }
}

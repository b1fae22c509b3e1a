import { ConfigError } from './errors/index.js';

/**
 * The services of your system, for the type checker, by declaration merging: once `services`
 * is set, `declareEvent` takes only those names as targets (`['paymnts']` is a compile error).
 *
 * @example
 * export const Services = defineServices(['payments', 'orders']);
 * declare module 'events-library' {
 *   interface ServiceRegistry { services: typeof Services }
 * }
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface ServiceRegistry {}

/** A target service name: any string, or one of `ServiceRegistry`'s services once it lists them. */
export type ServiceName = ServiceRegistry extends { services: infer S } ? Extract<S[keyof S], string> : string;

/** The service names `defineServices` was given, each under its own name: `Services.payments === 'payments'`. */
export type DefinedServices<N extends string> = { readonly [K in N]: K };

/**
 * Names the services of your system once: returns them as constants (`Services.payments`), and
 * `typeof` the result, set as `ServiceRegistry`'s `services`, makes any other target a compile error.
 * Throws ConfigError on an empty or repeated name.
 */
export function defineServices<const N extends string>(names: readonly N[]): DefinedServices<N> {
  for (const [i, name] of names.entries()) {
    if (typeof name !== 'string' || name.trim() === '') throw new ConfigError('defineServices: service names must be non-empty strings');
    if (names.indexOf(name) !== i) throw new ConfigError(`defineServices: "${name}" is listed twice`);
  }
  return Object.freeze(Object.fromEntries(names.map((name) => [name, name]))) as DefinedServices<N>;
}

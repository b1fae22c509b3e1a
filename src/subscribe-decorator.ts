import { ConfigError } from './errors/index.js';
import type { EventHandler, HandlerContext, ReceivedEvent, SubscribeOptions, Unsubscribe } from './types.js';

/** A method that handles events whose data is `Data`: what `@subscribeTo(type)` decorates. */
export type HandlerMethod<Data, This = unknown> = (
  this: This,
  data: Data,
  event: ReceivedEvent<Data>,
  context: HandlerContext,
) => void | Promise<void>;

/**
 * What `subscribeTo(type, options?)` returns without a handler: a method decorator, in either form.
 * Standard decorators (TypeScript ≥ 5) subscribe each instance as it is constructed; legacy ones
 * (`experimentalDecorators`, NestJS) record the method, and `bus.register(instance)` subscribes it.
 */
export interface SubscribeDecorator<Data> {
  <This>(method: HandlerMethod<Data, This>, context: ClassMethodDecoratorContext<This> & { static: false }): void;
  <M extends HandlerMethod<Data>>(target: object, method: string | symbol, descriptor: TypedPropertyDescriptor<M>): void;
}

/** A method decorated the legacy way, as `decoratedMethods` lists it: `options.name` is the handler name it subscribes under. */
export interface DecoratedMethod {
  method: string | symbol;
  type: string;
  options: SubscribeOptions & { name: string };
}

/** A bus's `subscribeTo(type, handler, options)`, as the decorators call it. */
export type Subscribe = (type: string, handler: EventHandler<unknown>, options: SubscribeOptions) => Unsubscribe;

type Records = { method: string | symbol; type: string; options: SubscribeOptions }[];

/** Where legacy decorators record their methods: an own property of the decorated class's prototype. */
const DECORATED = Symbol('events-library.subscribeTo');

/** `subscribeTo(type)` and `subscribeTo(type, options)` return a decorator; a handler (or anything else) subscribes. */
export function isDecoratorCall(rest: readonly unknown[]): boolean {
  return rest.length === 0 || (rest.length === 1 && typeof rest[0] === 'object' && rest[0] !== null);
}

/**
 * The decorator `subscribeTo(type, options)` returns. Its form is read from its arguments: a
 * context object (standard), or a prototype, a key and a descriptor (legacy). `subscribe` is called
 * only when an instance subscribes, so the module-level form reaches the default bus as it is then.
 */
export function subscribeDecorator(type: string, options: SubscribeOptions, subscribe: Subscribe): SubscribeDecorator<never> {
  return (target: unknown, context: unknown, descriptor?: unknown): void => {
    if (typeof context === 'object' && context !== null) {
      const standard = context as ClassMethodDecoratorContext;
      const { kind, name, static: isStatic } = standard;
      if (kind !== 'method' || isStatic) throw notAMethod(type, isStatic ? 'a static method' : `a ${kind}`);
      const method = target as (...args: unknown[]) => unknown;
      standard.addInitializer(function (this: unknown) {
        const instance = this as object;
        const named = { ...options, name: options.name ?? defaultName(type, instance, name) };
        subscribe(type, (...args) => method.apply(instance, args) as void, named);
      });
      return;
    }
    if (typeof target === 'function') throw notAMethod(type, 'a static method');
    if (typeof target !== 'object' || target === null || typeof (descriptor as PropertyDescriptor)?.value !== 'function') {
      throw notAMethod(type, 'something else');
    }
    const prototype = target as { [DECORATED]?: Records };
    if (!Object.hasOwn(prototype, DECORATED)) {
      // A subclass starts from its parent's records: the inherited methods stay subscribed.
      Object.defineProperty(prototype, DECORATED, { value: [...(prototype[DECORATED] ?? [])] });
    }
    prototype[DECORATED]!.push({ method: context as string | symbol, type, options });
  };
}

/**
 * The methods of `instance` decorated with `subscribeTo` the legacy way (`experimentalDecorators`),
 * each with its event type and options, `options.name` set to the handler name it subscribes under
 * (`ClassName.methodName` unless named). For framework integrations; `bus.register` subscribes them.
 */
export function decoratedMethods(instance: object): DecoratedMethod[] {
  const records = (instance as { [DECORATED]?: Records })[DECORATED] ?? [];
  return records.map(({ method, type, options }) => ({
    method,
    type,
    options: { ...options, name: options.name ?? defaultName(type, instance, method) },
  }));
}

/** Subscribes `instance`'s legacy-decorated methods, all or none; returns one unsubscribe for them all. */
export function registerInstance(subscribe: Subscribe, instance: object): Unsubscribe {
  const methods = decoratedMethods(instance);
  if (methods.length === 0) {
    throw new ConfigError(
      `register(): no method of ${className(instance) || 'this object'} is decorated with @subscribeTo the legacy way (experimentalDecorators); with standard decorators, constructing the class subscribes it`,
    );
  }
  const done: Unsubscribe[] = [];
  const unsubscribe = (): void => done.forEach((off) => off());
  try {
    for (const { method, type, options } of methods) {
      const handler = (instance as Record<string | symbol, unknown>)[method] as (...args: unknown[]) => unknown;
      done.push(subscribe(type, (...args) => handler.apply(instance, args) as void, options));
    }
  } catch (error) {
    unsubscribe();
    throw error;
  }
  return unsubscribe;
}

/** `ClassName.methodName`, from the class constructed: the same on every run, whatever the construction order. */
function defaultName(type: string, instance: object, method: string | symbol): string {
  const name = className(instance);
  if (!name) throw new ConfigError(`@subscribeTo("${type}") on an anonymous class needs a handler name: @subscribeTo("${type}", { name })`);
  return `${name}.${typeof method === 'symbol' ? method.description : method}`;
}

function className(instance: object): string | undefined {
  const name: unknown = (instance as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' ? name : undefined;
}

function notAMethod(type: string, what: string): ConfigError {
  return new ConfigError(`@subscribeTo("${type}") decorates instance methods, not ${what} (or pass a handler: subscribeTo("${type}", handler))`);
}

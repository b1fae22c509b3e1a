import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { ConfigError, ValidationError } from './errors/index.js';
import type { EventHandler, JSONSchema } from './types.js';

export interface Declaration {
  type: string;
  /** Target service names; their URLs and keys are resolved by the bus. */
  targets: readonly string[];
  validate: ValidateFunction | undefined;
  schema: JSONSchema | undefined;
}

export interface Subscription {
  /** Stable key under which the inbox records completion. */
  key: string;
  handler: EventHandler<unknown>;
  validate: ValidateFunction | undefined;
  schema: JSONSchema | undefined;
}

/** Declarations (what this service sends, to whom) and subscriptions (what it handles), with schemas compiled once. */
export class Catalog {
  private readonly ajv = new Ajv({ strict: false, allErrors: true });
  private readonly compiled = new WeakMap<object, ValidateFunction>();
  private readonly declarations = new Map<string, Declaration>();
  private readonly subscriptions = new Map<string, Subscription[]>();
  private readonly counters = new Map<string, number>();

  constructor() {
    addFormats(this.ajv);
  }

  declare(type: string, targets: readonly string[], schema: JSONSchema | undefined): void {
    checkType(type, 'declareEvent');
    this.declarations.set(type, { type, targets, validate: this.compile(type, schema), schema });
  }

  declaration(type: string): Declaration | undefined {
    return this.declarations.get(type);
  }

  subscribe(type: string, handler: EventHandler<unknown>, schema: JSONSchema | undefined, name?: string): () => void {
    checkType(type, 'subscribeTo');
    if (typeof handler !== 'function') throw new ConfigError(`subscribeTo("${type}") needs a handler function`);
    const n = (this.counters.get(type) ?? 0) + 1;
    this.counters.set(type, n);
    const subscription: Subscription = { key: name ?? `${type}#${n}`, handler, validate: this.compile(type, schema), schema };
    const list = this.subscriptions.get(type) ?? [];
    if (list.some((s) => s.key === subscription.key)) {
      throw new ConfigError(
        `subscribeTo("${type}"): a handler named "${subscription.key}" is already subscribed (a name is an inbox key: once per type and bus, so one instance per bus of a decorated class)`,
      );
    }
    this.subscriptions.set(type, [...list, subscription]);
    return () => {
      const current = this.subscriptions.get(type) ?? [];
      this.subscriptions.set(type, current.filter((s) => s !== subscription));
    };
  }

  /** The types with at least one handler. */
  subscribedTypes(): string[] {
    return [...this.subscriptions].filter(([, list]) => list.length > 0).map(([type]) => type);
  }

  subscribers(type: string): readonly Subscription[] {
    return this.subscriptions.get(type) ?? [];
  }

  /** Every declaration, and every subscription with its type: what the service's AsyncAPI document describes. */
  contract(): { sends: Declaration[]; receives: Array<{ type: string; handler: string; schema: JSONSchema | undefined }> } {
    const receives = [...this.subscriptions].flatMap(([type, list]) => list.map((s) => ({ type, handler: s.key, schema: s.schema })));
    return { sends: [...this.declarations.values()], receives };
  }

  /** Throws ValidationError when `data` fails `validate`. */
  check(type: string, validate: ValidateFunction | undefined, data: unknown): void {
    if (validate === undefined || validate(data)) return;
    const errors = validate.errors ?? [];
    throw new ValidationError(type, errors, this.ajv.errorsText(errors, { dataVar: 'data' }));
  }

  private compile(type: string, schema: JSONSchema | undefined): ValidateFunction | undefined {
    if (schema === undefined) return undefined;
    if (typeof schema !== 'object' || schema === null) {
      throw new ConfigError(`The schema of "${type}" must be a JSON Schema object`);
    }
    const cached = this.compiled.get(schema);
    if (cached) return cached;
    const id = (schema as { $id?: unknown }).$id;
    let validate = typeof id === 'string' ? this.ajv.getSchema(id) : undefined;
    try {
      validate ??= this.ajv.compile(schema as object);
    } catch (cause) {
      throw new ConfigError(`The schema of "${type}" is not a valid JSON Schema: ${(cause as Error).message}`, { cause });
    }
    this.compiled.set(schema, validate);
    return validate;
  }
}

function checkType(type: unknown, where: string): void {
  if (typeof type !== 'string' || type.trim() === '') {
    throw new ConfigError(`${where} needs an event type: a non-empty string such as "user-created"`);
  }
}

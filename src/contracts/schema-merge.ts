import { deepEqual, describes, isObject, type Json } from './json-document.js';

/** JSON Schema's types; `integer` is a subset of `number`. */
export const TYPES = ['null', 'boolean', 'object', 'array', 'string', 'number', 'integer'] as const;
/** What a schema without `type` allows. */
export const ANY_TYPE: ReadonlySet<string> = new Set(TYPES.filter((t) => t !== 'integer'));

/** A schema's `type` as a set; undefined when it has none (any type). */
export function typesOf(schema: Json): Set<string> | undefined {
  const { type } = schema;
  if (typeof type === 'string') return new Set([type]);
  return Array.isArray(type) ? new Set(type.filter((t): t is string => typeof t === 'string')) : undefined;
}

/** The values a schema allows when it lists them (`const`, `enum`, or both); undefined when it does not. */
export function enumerated(schema: Json): unknown[] | undefined {
  const list = Array.isArray(schema.enum) ? schema.enum : undefined;
  if (!Object.hasOwn(schema, 'const')) return list;
  return list === undefined || list.some((value) => deepEqual(value, schema.const)) ? [schema.const] : [];
}

/** Whether `a` is a whole multiple of `m`. */
export const isMultiple = (a: number, m: number): boolean => m > 0 && Math.abs(a / m - Math.round(a / m)) < 1e-9;

const LOWER = new Set(['minimum', 'exclusiveMinimum', 'minLength', 'minItems', 'minProperties']);
const UPPER = new Set(['maximum', 'exclusiveMaximum', 'maxLength', 'maxItems', 'maxProperties']);

/**
 * One schema that allows exactly what both allow (`allOf: [a, b]`), for the keywords the check
 * compares; undefined when it cannot say (then the check falls back to each part alone).
 * `false` when nothing can satisfy both.
 */
export function merge(a: Json, b: Json): Json | false | undefined {
  if (a.patternProperties !== undefined || b.patternProperties !== undefined) return undefined;
  const out: Json = { ...a };
  for (const [key, value] of Object.entries(b)) {
    const mine = a[key];
    if (!Object.hasOwn(a, key) || deepEqual(mine, value) || describes(key)) {
      if (!Object.hasOwn(a, key)) out[key] = value;
      continue;
    }
    if (key === 'type') {
      const [x, y] = [typesOf(a) ?? ANY_TYPE, typesOf(b) ?? ANY_TYPE];
      const both = TYPES.filter((t) => (x.has(t) || (t === 'integer' && x.has('number'))) && (y.has(t) || (t === 'integer' && y.has('number'))));
      if (both.length === 0) return false;
      out.type = both.includes('number') ? both.filter((t) => t !== 'integer') : both;
    } else if (key === 'required') {
      out.required = [...new Set([...strings(mine), ...strings(value)])];
    } else if (key === 'enum' || key === 'const') {
      return undefined; // rare beside allOf; the parts alone are tried instead
    } else if (LOWER.has(key) && typeof mine === 'number' && typeof value === 'number') {
      out[key] = Math.max(mine, value);
    } else if (UPPER.has(key) && typeof mine === 'number' && typeof value === 'number') {
      out[key] = Math.min(mine, value);
    } else if (key === 'multipleOf' && typeof mine === 'number' && typeof value === 'number' && (isMultiple(mine, value) || isMultiple(value, mine))) {
      out.multipleOf = Math.max(mine, value);
    } else if (key === 'uniqueItems') {
      out.uniqueItems = mine === true || value === true;
    } else if (key === 'allOf' && Array.isArray(mine) && Array.isArray(value)) {
      out.allOf = [...mine, ...value];
    } else if (key === 'items' && !Array.isArray(mine) && !Array.isArray(value)) {
      out.items = { allOf: [mine, value] };
    } else if (key !== 'properties' && key !== 'additionalProperties') {
      return undefined;
    }
  }
  return mergeObjects(a, b, out);
}

/** `properties` and `additionalProperties` of both: a property one side does not name falls under that side's `additionalProperties`. */
function mergeObjects(a: Json, b: Json, out: Json): Json {
  const [pa, pb] = [isObject(a.properties) ? a.properties : {}, isObject(b.properties) ? b.properties : {}];
  const properties: Json = {};
  for (const key of new Set([...Object.keys(pa), ...Object.keys(pb)])) {
    const parts = [
      Object.hasOwn(pa, key) ? pa[key] : a.additionalProperties,
      Object.hasOwn(pb, key) ? pb[key] : b.additionalProperties,
    ].filter((part) => part !== undefined);
    properties[key] = parts.length === 1 ? parts[0] : { allOf: parts };
  }
  if (Object.keys(properties).length > 0) out.properties = properties;
  const additional = [a.additionalProperties, b.additionalProperties].filter((part) => part !== undefined);
  if (additional.length > 0) out.additionalProperties = additional.length === 1 ? additional[0] : { allOf: additional };
  return out;
}

export const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []);

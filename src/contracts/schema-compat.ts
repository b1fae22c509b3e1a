import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { deepEqual, describes, isObject, type Json, type JsonDocument } from './json-document.js';
import { ANY_TYPE, enumerated, isMultiple, merge, strings, typesOf } from './schema-merge.js';

/** Why a producer's schema is not known to fit a consumer's, at one field. */
export interface SchemaFinding {
  /**
   * JSON pointer of the field in the payload: `""` is the payload itself, `/address/city` a
   * field; `*` stands for every item of an array, or every field an object does not name.
   */
  pointer: string;
  reason: string;
  /** No rule decides (the schemas may still fit): the check fails closed. */
  cannotProve: boolean;
}

/** Keywords with a rule of their own below; any other keyword of the consumer's must be the producer's too. */
const COMPARED = new Set([
  'type', 'enum', 'const', 'allOf', 'anyOf', 'oneOf', '$ref', 'format',
  'properties', 'required', 'additionalProperties', 'minProperties', 'maxProperties',
  'items', 'minItems', 'maxItems', 'uniqueItems', 'minLength', 'maxLength', 'pattern',
  'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf',
]);
/** Keywords that mean something only with others: the same group on both sides, or (`[]`) never proven. */
const GROUPS: Record<string, readonly string[]> = {
  if: ['if', 'then', 'else'],
  then: ['if', 'then', 'else'],
  else: ['if', 'then', 'else'],
  additionalItems: ['items', 'additionalItems'],
  minContains: ['contains', 'minContains'],
  maxContains: ['contains', 'maxContains'],
  unevaluatedProperties: [],
  unevaluatedItems: [],
  $dynamicRef: [],
  $recursiveRef: [],
};
/** Formats whose strings are all valid under another format too. */
const WIDER_FORMATS: Record<string, readonly string[]> = {
  email: ['idn-email'],
  hostname: ['idn-hostname'],
  uri: ['uri-reference', 'iri', 'iri-reference'],
  iri: ['iri-reference'],
  'uri-reference': ['iri-reference'],
  int32: ['int64'],
  float: ['double'],
};
/** Comparison steps before giving up (a schema that keeps expanding). */
const MAX_STEPS = 20_000;

/**
 * Is every value valid under the producer's schema also valid under the consumer's? An empty
 * list means proven. The proof goes keyword by keyword (each constraint of the consumer's must
 * follow from the producer's); where no rule decides, a finding says it cannot prove: never a
 * false "compatible". Each side's `$ref`s resolve in its own document.
 */
export function compareSchemas(producer: unknown, consumer: unknown, documents: { producer: JsonDocument; consumer: JsonDocument }): SchemaFinding[] {
  const comparison = new Comparison(documents.producer, documents.consumer);
  comparison.compare(producer, consumer, '', false, new Map());
  return comparison.findings;
}

type Seen = ReadonlyMap<string, string>;
type Bound = { value: number; exclusive: boolean };

class Comparison {
  findings: SchemaFinding[] = [];
  private steps = 0;
  private ajv: Ajv | undefined;

  constructor(
    private readonly producer: JsonDocument,
    private readonly consumer: JsonDocument,
  ) {}

  /**
   * Adds the findings of `p ⊆ c` at `at`. `loose`: the producer's schema here (or above) has
   * constraints the check ignores, so what looks incompatible may not be: "cannot prove".
   */
  compare(pIn: unknown, cIn: unknown, at: string, loose: boolean, seen: Seen): void {
    if (++this.steps > MAX_STEPS) return this.add(at, 'the schemas are too large or too deeply recursive to compare', true);
    const p = this.producer.deref(pIn);
    const c = this.consumer.deref(cIn);
    if (p.schema === undefined || c.schema === undefined) {
      const [side, { refs }] = p.schema === undefined ? ['producer', p] : ['consumer', c];
      return this.add(at, `the ${side}'s schema here is not a JSON Schema${refs.length > 0 ? ` (its $ref ${refs.at(-1)} does not resolve in its document)` : ''}`, true);
    }
    if (p.refs.length + c.refs.length > 0) {
      // Recursive schemas: meeting the same pair of references again deeper in the payload is the same question (assumed to hold).
      const key = `${p.refs.join(' ')}|${c.refs.join(' ')}`;
      const before = seen.get(key);
      if (before !== undefined) return before === at ? this.add(at, 'the schemas refer to themselves without describing a field', true) : undefined;
      seen = new Map(seen).set(key, at);
    }
    const ps: Json | false = p.schema === true ? {} : p.schema;
    const cs = c.schema;
    if (cs === true || ps === false || (isObject(cs) && Object.keys(cs).every(describes))) return;
    if (cs === false) return this.add(at, "the consumer's schema accepts no value here", loose);
    if (Array.isArray(ps.allOf)) return this.producerAllOf(ps, ps.allOf, cs, at, loose, seen);
    if (Array.isArray(ps.anyOf) || Array.isArray(ps.oneOf)) return this.producerUnion(ps, cs, at, loose, seen);
    if (Array.isArray(cs.allOf)) {
      for (const part of [without(cs, 'allOf'), ...cs.allOf]) this.compare(ps, part, at, loose, seen);
      return;
    }
    if (Array.isArray(cs.anyOf) || Array.isArray(cs.oneOf)) return this.consumerUnion(ps, cs, at, loose, seen);
    this.keywords(ps, cs, at, loose || Object.keys(ps).some((key) => !COMPARED.has(key) && !describes(key)), seen);
  }

  /** The producer's `allOf`, combined into one schema; else one of its parts alone must fit. */
  private producerAllOf(ps: Json, parts: unknown[], cs: Json, at: string, loose: boolean, seen: Seen): void {
    let merged: Json | false | undefined = without(ps, 'allOf');
    for (const part of parts) {
      const { schema } = this.producer.deref(part);
      if (merged === false || schema === false) return;
      merged = schema === undefined ? undefined : merge(merged, schema === true ? {} : schema);
      if (merged === undefined) break;
    }
    if (merged === false) return;
    if (merged !== undefined) return this.compare(merged, cs, at, loose, seen);
    for (const part of [without(ps, 'allOf'), ...parts]) if (this.trial(() => this.compare(part, cs, at, loose, seen)).length === 0) return;
    this.add(at, "the producer's allOf cannot be combined into one schema, and no part of it alone fits the consumer's schema", true);
  }

  /** The producer's `anyOf`/`oneOf`: every branch (with the rest of the schema) must fit. */
  private producerUnion(ps: Json, cs: Json, at: string, loose: boolean, seen: Seen): void {
    const key = Array.isArray(ps.anyOf) ? 'anyOf' : 'oneOf';
    const rest = without(ps, key);
    if (this.trial(() => this.compare(rest, cs, at, loose, seen)).length === 0) return;
    for (const branch of ps[key] as unknown[]) {
      const { schema } = this.producer.deref(branch);
      const merged = schema === true ? rest : isObject(schema) ? merge(rest, schema) : schema;
      // A branch that cannot be combined with the rest is compared alone: it allows more, so what fails is not certain.
      if (merged === undefined) this.compare(branch, cs, at, true, seen);
      else this.compare(merged, cs, at, loose, seen);
    }
  }

  /** The consumer's `anyOf`/`oneOf`: one branch must take every value; for `oneOf`, no other branch may take any. */
  private consumerUnion(ps: Json, cs: Json, at: string, loose: boolean, seen: Seen): void {
    const key = Array.isArray(cs.anyOf) ? 'anyOf' : 'oneOf';
    const branches = cs[key] as unknown[];
    const rest = without(cs, key);
    const tries = branches.map((branch) => this.trial(() => this.compare(ps, { allOf: [rest, branch] }, at, loose, seen)));
    const fits = tries.findIndex((found) => found.length === 0);
    if (fits < 0) {
      if (branches.length === 1) this.findings.push(...tries[0]!);
      else this.add(at, `no single branch of the consumer's ${key} accepts every value the producer allows`, true);
      return;
    }
    if (key === 'anyOf') return;
    const other = branches.findIndex((branch, i) => i !== fits && !this.disjoint(ps, branch));
    if (other >= 0) this.add(at, `a value of the producer's may match branches ${fits + 1} and ${other + 1} of the consumer's oneOf, which then refuses it`, true);
  }

  /** Whether no value of the producer's schema `ps` is valid under the consumer's `branch` (sufficient rules only). */
  private disjoint(ps: Json, branch: unknown): boolean {
    const { schema } = this.consumer.deref(branch);
    if (schema === false) return true;
    if (!isObject(schema)) return false;
    const values = enumerated(ps);
    if (values) {
      const validate = this.validator(schema);
      return validate !== undefined && values.every((value) => !validate(value));
    }
    const [pt, bt] = [typesOf(ps) ?? ANY_TYPE, typesOf(schema)];
    if (bt && ![...pt].some((t) => bt.has(t) || (t === 'integer' && bt.has('number')) || (t === 'number' && bt.has('integer')))) return true;
    // A field the producer always sends, whose values the branch never takes (a discriminator).
    if (pt.size !== 1 || !pt.has('object') || !isObject(ps.properties) || !isObject(schema.properties)) return false;
    const props = ps.properties;
    return strings(ps.required).some((name) => {
      const mine = this.producer.deref(props[name]).schema;
      const theirs = Object.hasOwn(schema.properties as Json, name) ? (schema.properties as Json)[name] : undefined;
      return isObject(mine) && theirs !== undefined && this.disjoint(mine, theirs);
    });
  }

  private keywords(ps: Json, cs: Json, at: string, loose: boolean, seen: Seen): void {
    const values = enumerated(ps);
    if (values) return this.values(values, cs, at, loose);
    for (const key of Object.keys(cs)) {
      if (COMPARED.has(key) || describes(key) || (key === 'not' && this.disjoint(ps, cs.not))) continue;
      this.sameKeyword(ps, cs, key, at);
    }
    const pTypes = typesOf(ps) ?? ANY_TYPE;
    const cValues = enumerated(cs);
    if (cValues) {
      const finite = [...pTypes].every((t) => (t === 'null' && cValues.includes(null)) || (t === 'boolean' && cValues.includes(true) && cValues.includes(false)));
      if (!finite) return this.add(at, `the consumer accepts only ${list(cValues.map((v) => JSON.stringify(v)))}; the producer allows other values`, loose);
    }
    const cTypes = typesOf(cs);
    const integers = !pTypes.has('number') || (typeof ps.multipleOf === 'number' && isMultiple(ps.multipleOf, 1));
    const takes = (t: string) => !cTypes || cTypes.has(t) || (t === 'integer' && cTypes.has('number')) || (t === 'number' && integers && cTypes.has('integer'));
    const missing = [...pTypes].filter((t) => !takes(t));
    if (missing.length > 0) {
      const what = typesOf(ps) === undefined ? "the producer's schema allows any type here" : `the producer allows ${list(missing)}`;
      this.add(at, `${what}; the consumer requires ${list([...cTypes!])}`, loose);
    }
    const live = (t: string) => (pTypes.has(t) || (t === 'number' && pTypes.has('integer'))) && takes(t === 'number' && integers ? 'integer' : t);
    if (live('string') || live('number')) this.format(ps, cs, at, loose);
    if (live('string')) this.strings(ps, cs, at, loose);
    if (live('number')) this.numbers(ps, cs, at, loose, integers);
    if (live('object')) this.objects(ps, cs, at, loose, seen);
    if (live('array')) this.arrays(ps, cs, at, loose, seen);
  }

  /** The producer lists its values: each must be valid under the consumer's schema. */
  private values(values: unknown[], cs: Json, at: string, loose: boolean): void {
    const validate = this.validator(cs);
    if (!validate) return this.add(at, "the consumer's schema here cannot be compiled to check the producer's values against it", true);
    for (const value of values) {
      if (!validate(value)) this.add(at, `the producer may send ${JSON.stringify(value)}, which the consumer refuses (${this.ajv!.errorsText(validate.errors, { dataVar: 'value' })})`, loose);
    }
  }

  private format(ps: Json, cs: Json, at: string, loose: boolean): void {
    const [mine, theirs] = [ps.format, cs.format];
    if (typeof theirs !== 'string' || mine === theirs || (typeof mine === 'string' && WIDER_FORMATS[mine]?.includes(theirs))) return;
    if (mine === undefined && ps.pattern === undefined) return this.add(at, `the consumer requires format "${theirs}"; the producer allows any string`, loose);
    this.add(at, `the consumer requires format "${theirs}"; the producer's ${mine === undefined ? 'pattern' : `format "${String(mine)}"`} may allow other values`, true);
  }

  private strings(ps: Json, cs: Json, at: string, loose: boolean): void {
    const shaped = loose || ps.pattern !== undefined || ps.format !== undefined;
    this.atLeast(at, 'characters', ps.minLength, cs.minLength, shaped);
    this.atMost(at, 'characters', ps.maxLength, cs.maxLength, shaped);
    if (typeof cs.pattern === 'string' && ps.pattern !== cs.pattern) {
      const mine = ps.pattern !== undefined ? `pattern /${String(ps.pattern)}/ may allow others` : ps.format !== undefined ? `format "${String(ps.format)}" may allow others` : undefined;
      this.add(at, `the consumer requires strings matching /${cs.pattern}/; ${mine ? `the producer's ${mine}` : 'the producer allows any string'}`, shaped);
    }
  }

  private numbers(ps: Json, cs: Json, at: string, loose: boolean, integers: boolean): void {
    for (const side of ['lower', 'upper'] as const) {
      const [mine, theirs] = [bound(ps, side, integers), bound(cs, side, integers)];
      if (!theirs) continue;
      const tighter = mine && (side === 'lower' ? mine.value > theirs.value : mine.value < theirs.value);
      if (tighter || (mine && mine.value === theirs.value && (mine.exclusive || !theirs.exclusive))) continue;
      const sign = (b: Bound) => `${side === 'lower' ? '>' : '<'}${b.exclusive ? '' : '='} ${b.value}`;
      this.add(at, `the consumer requires ${sign(theirs)}; the producer ${mine ? `allows ${sign(mine)}` : `sets no ${side} bound`}`, loose);
    }
    const step = cs.multipleOf;
    if (typeof step !== 'number') return;
    const mine = ps.multipleOf;
    if ((typeof mine === 'number' && isMultiple(mine, step)) || (integers && isMultiple(1, step))) return;
    this.add(at, `the consumer requires multiples of ${step}; the producer ${typeof mine === 'number' ? `allows multiples of ${mine}` : 'allows any number'}`, loose);
  }

  private objects(ps: Json, cs: Json, at: string, loose: boolean, seen: Seen): void {
    const [mine, theirs] = [isObject(ps.properties) ? ps.properties : {}, isObject(cs.properties) ? cs.properties : {}];
    const required = new Set(strings(ps.required));
    /** The producer's schema of a field: its own, or what its patternProperties or additionalProperties say. */
    const producerOf = (name: string): unknown => {
      if (Object.hasOwn(mine, name)) return mine[name];
      const patterns = isObject(ps.patternProperties) ? Object.entries(ps.patternProperties).filter(([re]) => matches(re, name)).map(([, s]) => s) : [];
      if (patterns.length > 0) return { allOf: patterns };
      return ps.additionalProperties ?? true;
    };
    for (const name of strings(cs.required)) {
      if (required.has(name)) continue;
      const never = this.producer.deref(producerOf(name)).schema === false;
      this.add(`${at}/${escape(name)}`, `the consumer requires this field; the producer ${never ? 'never sends it' : 'may leave it out'}`, loose);
    }
    for (const [name, schema] of Object.entries(theirs)) {
      const own = producerOf(name);
      if (this.producer.deref(own).schema !== false) this.compare(own, schema, `${at}/${escape(name)}`, loose, seen);
    }
    this.additional(ps, cs, mine, theirs, at, loose, seen);
    this.atLeast(at, 'fields', Math.max(typeof ps.minProperties === 'number' ? ps.minProperties : 0, required.size), cs.minProperties, true);
    const closed = ps.additionalProperties === false && ps.patternProperties === undefined ? Object.keys(mine).length : undefined;
    this.atMost(at, 'fields', ps.maxProperties ?? closed, cs.maxProperties, true);
  }

  /** The consumer's `additionalProperties`: every field of the producer's it does not name must fit it. */
  private additional(ps: Json, cs: Json, mine: Json, theirs: Json, at: string, loose: boolean, seen: Seen): void {
    const rest = cs.additionalProperties;
    if (rest === undefined || rest === true) return;
    if (cs.patternProperties !== undefined || ps.patternProperties !== undefined) {
      return this.add(at, "the check does not compare additionalProperties beside patternProperties", true);
    }
    const closed = this.consumer.deref(rest).schema === false;
    const named = list(Object.keys(theirs).map((name) => `"${name}"`), 'none');
    for (const [name, schema] of Object.entries(mine)) {
      if (Object.hasOwn(theirs, name) || this.producer.deref(schema).schema === false) continue;
      if (closed) this.add(`${at}/${escape(name)}`, `the producer may send this field; the consumer allows no fields but ${named} (additionalProperties: false)`, loose);
      else this.compare(schema, rest, `${at}/${escape(name)}`, loose, seen);
    }
    const open = ps.additionalProperties ?? true;
    if (this.producer.deref(open).schema === false) return;
    if (!closed) return this.compare(open, rest, `${at}/*`, loose, seen);
    this.add(`${at}/*`, `the producer allows fields besides ${list(Object.keys(mine).map((name) => `"${name}"`), 'none')}; the consumer allows no fields but ${named} (additionalProperties: false)`, loose);
  }

  private arrays(ps: Json, cs: Json, at: string, loose: boolean, seen: Seen): void {
    if (Array.isArray(cs.items)) this.sameKeyword(ps, cs, 'items', at);
    else if (cs.items !== undefined && ps.maxItems !== 0) {
      if (Array.isArray(ps.items) || ps.prefixItems !== undefined) this.add(at, "the producer's array is a tuple; the check compares arrays whose items share one schema", true);
      else this.compare(ps.items ?? true, cs.items, `${at}/*`, loose, seen);
    }
    this.atLeast(at, 'items', ps.minItems, cs.minItems, loose);
    this.atMost(at, 'items', ps.maxItems, cs.maxItems, loose);
    if (cs.uniqueItems === true && ps.uniqueItems !== true) this.add(at, 'the consumer requires unique items; the producer allows repeats', loose);
  }

  private atLeast(at: string, what: string, mine: unknown, theirs: unknown, loose: boolean): void {
    const least = typeof mine === 'number' ? mine : 0;
    if (typeof theirs === 'number' && least < theirs) this.add(at, `the consumer requires at least ${theirs} ${what}; the producer allows ${least}`, loose);
  }

  private atMost(at: string, what: string, mine: unknown, theirs: unknown, loose: boolean): void {
    if (typeof theirs !== 'number' || (typeof mine === 'number' && mine <= theirs)) return;
    this.add(at, `the consumer allows at most ${theirs} ${what}; the producer ${typeof mine === 'number' ? `allows ${mine}` : 'sets no limit'}`, loose);
  }

  /** A keyword without a rule here: proven only when the producer has the very same (with the keywords it depends on). */
  private sameKeyword(ps: Json, cs: Json, key: string, at: string): void {
    const group = GROUPS[key] ?? [key];
    const same = group.length > 0 && group.every((k) => {
      const [mine, theirs] = [this.producer.inline(ps[k]), this.consumer.inline(cs[k])];
      return (ps[k] === undefined || mine !== undefined) && (cs[k] === undefined || theirs !== undefined) && deepEqual(mine, theirs);
    });
    if (!same) this.add(at, `the consumer's "${key}" is not one the check compares, and the producer's schema does not carry the same`, true);
  }

  /** The consumer's schema compiled (references inlined), to test the producer's listed values; undefined when it cannot be. */
  private validator(schema: Json): ValidateFunction | undefined {
    const inlined = this.consumer.inline(schema);
    if (!isObject(inlined)) return undefined;
    if (!this.ajv) {
      this.ajv = new Ajv({ strict: false, logger: false });
      addFormats(this.ajv);
    }
    try {
      return this.ajv.compile(inlined);
    } catch {
      return undefined;
    }
  }

  private trial(run: () => void): SchemaFinding[] {
    const kept = this.findings;
    this.findings = [];
    try {
      run();
      return this.findings;
    } finally {
      this.findings = kept;
    }
  }

  private add(pointer: string, reason: string, cannotProve: boolean): void {
    this.findings.push({ pointer, reason, cannotProve });
  }
}

/** A schema's lower or upper bound on numbers (draft 4's boolean `exclusiveMinimum` too); as whole numbers when only integers are in play. */
function bound(schema: Json, side: 'lower' | 'upper', integers: boolean): Bound | undefined {
  const [inclusive, exclusive] = side === 'lower' ? [schema.minimum, schema.exclusiveMinimum] : [schema.maximum, schema.exclusiveMaximum];
  const candidates: Bound[] = [];
  if (typeof inclusive === 'number') candidates.push({ value: inclusive, exclusive: exclusive === true });
  if (typeof exclusive === 'number') candidates.push({ value: exclusive, exclusive: true });
  const sign = side === 'lower' ? 1 : -1;
  let tightest = candidates.sort((a, b) => sign * (b.value - a.value) || Number(b.exclusive) - Number(a.exclusive))[0];
  if (tightest && integers) {
    const { value, exclusive: x } = tightest;
    const whole = side === 'lower' ? (x ? Math.floor(value) + 1 : Math.ceil(value)) : x ? Math.ceil(value) - 1 : Math.floor(value);
    tightest = { value: whole, exclusive: false };
  }
  return tightest;
}

function matches(pattern: string, name: string): boolean {
  try {
    return new RegExp(pattern, 'u').test(name);
  } catch {
    return true; // a pattern we cannot read may match: the field is then compared under it
  }
}

const without = (schema: Json, ...keys: string[]): Json => Object.fromEntries(Object.entries(schema).filter(([key]) => !keys.includes(key)));
const escape = (name: string): string => name.replace(/~/g, '~0').replace(/\//g, '~1');
const list = (items: readonly string[], none = 'nothing'): string => (items.length === 0 ? none : items.join(', '));

/** A JSON document (an AsyncAPI document, a JSON Schema) and its local references (`#/a/b`), for the contract tools. */

export type Json = Record<string, unknown>;

export const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Structural equality of JSON values (key order ignored). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((item, i) => deepEqual(item, b[i]));
  if (!isObject(a) || !isObject(b)) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && deepEqual(a[key], b[key]));
}

/** Longest chain of references followed from one place (a longer one is taken for a cycle). */
const MAX_REFS = 32;

export class JsonDocument {
  constructor(readonly root: unknown) {}

  /** What a local reference (`#`, `#/components/schemas/User`) points at; undefined for another kind or a missing target. */
  resolve(ref: string): unknown {
    if (ref !== '#' && !ref.startsWith('#/')) return undefined;
    let node = this.root;
    for (const raw of ref === '#' ? [] : ref.slice(2).split('/')) {
      let key: string;
      try {
        key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
      } catch {
        return undefined;
      }
      if (Array.isArray(node) && /^\d+$/.test(key)) node = node[Number(key)];
      else if (isObject(node) && Object.hasOwn(node, key)) node = node[key];
      else return undefined;
    }
    return node;
  }

  /** `value`, or what its `$ref` chain leads to (an AsyncAPI operation, channel or message); undefined when a reference does not resolve. */
  follow(value: unknown): unknown {
    for (let i = 0; i < MAX_REFS && isObject(value) && typeof value.$ref === 'string'; i++) value = this.resolve(value.$ref);
    return isObject(value) && typeof value.$ref === 'string' ? undefined : value;
  }

  /**
   * A schema with its references followed (a reference beside other keywords becomes an `allOf`
   * of both): the schema and the references followed, or undefined and the one that failed.
   */
  deref(value: unknown): { schema: Json | boolean | undefined; refs: string[] } {
    const refs: string[] = [];
    while (isObject(value) && typeof value.$ref === 'string') {
      const { $ref, ...rest } = value;
      refs.push($ref);
      const target = this.resolve($ref);
      if (target === undefined || refs.length > MAX_REFS) return { schema: undefined, refs };
      value = Object.keys(rest).some((key) => !ANNOTATIONS.has(key) && !key.startsWith('x-')) ? { allOf: [target, rest] } : target;
    }
    return { schema: typeof value === 'boolean' || isObject(value) ? value : undefined, refs };
  }

  /** A copy of `value` with every local reference inlined and `$id`/`$schema` dropped; undefined for a cycle or a reference that does not resolve. */
  inline(value: unknown, path: readonly string[] = []): unknown {
    if (Array.isArray(value)) {
      const items = value.map((item) => this.inline(item, path));
      return items.includes(undefined) ? undefined : items;
    }
    if (!isObject(value)) return value;
    if (typeof value.$ref === 'string') {
      const { $ref, ...rest } = value;
      if (path.includes($ref) || path.length > MAX_REFS) return undefined;
      const target = this.inline(this.resolve($ref), [...path, $ref]);
      if (target === undefined) return undefined;
      return Object.keys(rest).length === 0 ? target : this.inline({ allOf: [target, rest] }, path);
    }
    const copy: Json = {};
    for (const [key, item] of Object.entries(value)) {
      if (key === '$id' || key === '$schema') continue;
      const inlined = this.inline(item, path);
      if (inlined === undefined) return undefined;
      copy[key] = inlined;
    }
    return copy;
  }
}

/** Keywords that describe without constraining. */
export const ANNOTATIONS = new Set([
  'title', 'description', 'default', 'examples', 'example', '$comment', 'deprecated', 'readOnly', 'writeOnly',
  '$id', '$schema', '$anchor', '$dynamicAnchor', '$defs', 'definitions', '$vocabulary',
  'contentEncoding', 'contentMediaType', 'contentSchema', 'discriminator', 'externalDocs',
]);

/** Whether a keyword only describes (an annotation, or an `x-` extension). */
export const describes = (key: string): boolean => ANNOTATIONS.has(key) || key.startsWith('x-');

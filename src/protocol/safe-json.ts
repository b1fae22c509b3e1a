import { ProtocolError } from './protocol-error.js';

/**
 * JSON.parse that refuses keys able to pollute prototypes when a handler later merges the data
 * (`__proto__`, and `constructor.prototype`). The scan runs only when the text contains them (or a `\u` escape).
 */
export function parseJson(text: string, what: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new ProtocolError(400, 'malformed_json', `${what} is not valid JSON: ${(cause as Error).message}`);
  }
  // A JSON escape (`"\u005f_proto__"`) spells the same key without the literal text: scan then too.
  if (text.includes('__proto__') || text.includes('prototype') || text.includes('\\u')) assertNoPollution(value, what);
  return value;
}

function assertNoPollution(value: unknown, what: string): void {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null || typeof node !== 'object') continue;
    for (const key of Object.keys(node)) {
      const child = (node as Record<string, unknown>)[key];
      if (key === '__proto__' || (key === 'constructor' && child !== null && typeof child === 'object' && 'prototype' in child)) {
        throw new ProtocolError(400, 'forbidden_key', `${what} contains the forbidden key "${key}"`);
      }
      stack.push(child);
    }
  }
}

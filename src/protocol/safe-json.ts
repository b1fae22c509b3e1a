import secureJson from 'secure-json-parse';
import { ProtocolError } from './protocol-error.js';

const OPTIONS = { protoAction: 'error', constructorAction: 'error' } as const;

/**
 * JSON.parse that refuses keys able to pollute prototypes when a handler later merges the data
 * (`__proto__`, and `constructor.prototype`, also when spelled with `\u` escapes), using
 * `secure-json-parse`: it scans the parsed value only when the text contains a suspect key.
 */
export function parseJson(text: string, what: string): unknown {
  try {
    return secureJson.parse(text, null, OPTIONS);
  } catch (cause) {
    const message = (cause as Error).message;
    // secure-json-parse's own refusal ("Object contains forbidden prototype property"); anything else is JSON.parse's.
    if (message.includes('forbidden prototype property')) {
      throw new ProtocolError(
        400,
        'forbidden_key',
        `${what} contains the forbidden key "__proto__" or "constructor" with a "prototype" (prototype pollution)`,
      );
    }
    throw new ProtocolError(400, 'malformed_json', `${what} is not valid JSON: ${message}`);
  }
}

/**
 * Text the operator's terminal shows as text. What the CLI prints comes partly from elsewhere (a
 * target's error body, event types, target names, paths): a raw ESC or CSI (U+009B) would let
 * it clear the screen, move the cursor or set the window title, and a bidi override would
 * reorder what the operator reads. Every such character is printed as an escape instead:
 * C0 controls (newline, carriage return and tab included, inside a field), DEL, C1 controls,
 * the bidi controls and overrides, and the line and paragraph separators.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** The same, less the C0 characters JSON.stringify already escapes inside strings. */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// eslint-disable-next-line no-control-regex
const UNSAFE_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeChar(char: string): string {
  const named = NAMED[char];
  if (named) return named;
  const code = char.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** One field (a table cell, a value in a message): every unsafe character escaped, `\n` included. */
export function escapeField(text: string): string {
  return text.replace(UNSAFE, escapeChar);
}

/** A whole block of output whose line breaks are ours: every unsafe character but `\n` escaped. */
export function escapeOutput(text: string): string {
  return text.replace(UNSAFE_BUT_NEWLINE, escapeChar);
}

/**
 * JSON.stringify, with the characters it leaves raw (DEL, C1, bidi, separators) written as
 * `\uXXXX` escapes too: still valid JSON that parses to exactly the same value, body included.
 */
export function safeJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(UNSAFE_IN_JSON, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

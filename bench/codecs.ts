/**
 * `npx tsx bench/codecs.ts [--reps 7] [--ms 300]`: the receiver's and sender's per-event codecs
 * against the kept libraries that could replace them, in one process, repetitions interleaved,
 * medians reported. Decides issue 6 item 17: what stays hand-written and what a library does.
 *
 * - prototype-safe JSON: secure-json-parse (what src/protocol/safe-json.ts uses) vs the former
 *   hand-written scan vs bare JSON.parse, on a 1 KB structured event;
 * - signatures: our sign/verify vs the `standardwebhooks` package's;
 * - envelope: our createEvent + toStructuredBody and detectMode + parseStructured vs `cloudevents`'.
 */
import { parseArgs } from 'node:util';
import { CloudEvent, HTTP } from 'cloudevents';
import secureJson from 'secure-json-parse';
import { Webhook } from 'standardwebhooks';
import { createEvent, detectMode, parseStructured, STRUCTURED_CONTENT_TYPE, toStructuredBody } from '../src/protocol/cloudevents.js';
import { parseSecret, sign, signatureHeader, verify } from '../src/protocol/signature.js';
import { fmt, median, payload, SECRET, table } from './lib.js';

const { values } = parseArgs({ options: { reps: { type: 'string', default: '7' }, ms: { type: 'string', default: '300' } } });
const REPS = Number(values.reps);
const MS = Number(values.ms);

const event = createEvent('users', 'user-created', payload(123456));
const body = toStructuredBody(event);
const bodyBuffer = Buffer.from(body);
const key = parseSecret(SECRET);
const webhook = new Webhook(SECRET);
const now = new Date();
const ts = Math.floor(now.getTime() / 1000);
const ours = signatureHeader([key], event.id, ts, body);
const headers = { 'webhook-id': event.id, 'webhook-timestamp': String(ts), 'webhook-signature': ours };
const ceHeaders = { 'content-type': STRUCTURED_CONTENT_TYPE };
const verifyInput = { id: event.id, timestamp: String(ts), signature: ours, body: bodyBuffer };
let sink: unknown;

/** The hand-written scan safe-json.ts had before secure-json-parse (the baseline it replaced). */
function formerParseJson(text: string): unknown {
  const value: unknown = JSON.parse(text);
  if (text.includes('__proto__') || text.includes('prototype') || text.includes('\\u')) {
    const stack: unknown[] = [value];
    while (stack.length > 0) {
      const node = stack.pop();
      if (node === null || typeof node !== 'object') continue;
      for (const k of Object.keys(node)) {
        const child = (node as Record<string, unknown>)[k];
        if (k === '__proto__' || (k === 'constructor' && child !== null && typeof child === 'object' && 'prototype' in child)) throw new Error('forbidden');
        stack.push(child);
      }
    }
  }
  return value;
}

const cases: Record<string, () => void> = {
  'JSON.parse (no protection)': () => void (sink = JSON.parse(body)),
  'safe JSON: former hand-written scan': () => void (sink = formerParseJson(body)),
  'safe JSON: secure-json-parse (used)': () => void (sink = secureJson.parse(body, null, { protoAction: 'error', constructorAction: 'error' })),
  'sign: ours': () => void (sink = sign(key, event.id, ts, body)),
  'sign: standardwebhooks': () => void (sink = webhook.sign(event.id, now, body)),
  'verify: ours': () => void (sink = verify([key], verifyInput, 300)),
  'verify + JSON.parse: ours': () => void (sink = verify([key], verifyInput, 300) ?? JSON.parse(body)),
  'verify (+ JSON.parse): standardwebhooks': () => void (sink = webhook.verify(body, headers)),
  'envelope build: ours': () => void (sink = toStructuredBody(createEvent('users', 'user-created', event.data))),
  'envelope build: cloudevents': () => void (sink = HTTP.structured(new CloudEvent({ source: 'users', type: 'user-created', data: event.data })).body),
  'envelope parse: ours': () => void (sink = detectMode(ceHeaders) === 'structured' ? parseStructured(bodyBuffer) : undefined),
  'envelope parse: cloudevents': () => void (sink = HTTP.toEvent({ headers: ceHeaders, body })),
};

function opsPerSecond(run: () => void): number {
  let n = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(MS) * 1_000_000n;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 200; i += 1) run();
    n += 200;
    now = process.hrtime.bigint();
  }
  return n / (Number(now - start) / 1e9);
}

const samples = new Map<string, number[]>(Object.keys(cases).map((name) => [name, []]));
for (let rep = 0; rep <= REPS; rep += 1) {
  for (const [name, run] of Object.entries(cases)) {
    const rate = opsPerSecond(run);
    if (rep > 0) samples.get(name)!.push(rate); // rep 0 warms up
  }
  process.stderr.write(`rep ${rep}/${REPS}\n`);
}
void sink;

const rate = (name: string): number => median(samples.get(name)!);
const pairs: Array<[string, string, string]> = [
  ['prototype-safe JSON, 1 KB', 'safe JSON: secure-json-parse (used)', 'safe JSON: former hand-written scan'],
  ['sign', 'sign: ours', 'sign: standardwebhooks'],
  ['verify (ours + JSON.parse, as standardwebhooks does)', 'verify + JSON.parse: ours', 'verify (+ JSON.parse): standardwebhooks'],
  ['envelope build + serialise', 'envelope build: ours', 'envelope build: cloudevents'],
  ['envelope parse', 'envelope parse: ours', 'envelope parse: cloudevents'],
];
console.log(table(['case', 'ops/s (median)'], Object.keys(cases).map((name) => [name, fmt.int(rate(name))])));
console.log();
console.log(
  table(
    ['comparison', 'first', 'second', 'first ÷ second'],
    pairs.map(([label, a, b]) => [label, fmt.int(rate(a)), fmt.int(rate(b)), fmt.ratio(rate(a) / rate(b))]),
  ),
);

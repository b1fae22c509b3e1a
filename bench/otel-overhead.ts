/**
 * `npx tsx bench/otel-overhead.ts [--reps 7] [--emits 20000]`: what OpenTelemetry costs on the
 * emit path. Sequential awaited emits of a 1 KB payload to one target, in-memory outbox, a
 * transport that acknowledges at once (no network), in one process:
 *   off      openTelemetry: false (what a user without @opentelemetry/api gets: no per-event work)
 *   api-only @opentelemetry/api loaded, no SDK registered (non-recording spans, no-op meter)
 *   sdk      a tracer provider (batch processor, exporter that drops) and a meter provider registered
 * Reps are interleaved (rep 0 is a discarded warm-up); prints medians and the ratio to `off`.
 */
import { metrics, trace } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import winston from 'winston';
import { createEventBus } from '../src/index.js';
import type { Transport } from '../src/send/transport.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const REPS = arg('reps', 7);
const EMITS = arg('emits', 20_000);
const payload = { text: 'x'.repeat(1000) };
const ack: Transport = { send: async () => ({ outcome: 'delivered', status: 200, attempts: 1, receipt: true }), close: async () => {} };
const logger = winston.createLogger({ level: 'warn', silent: true });

type Mode = 'off' | 'api-only' | 'sdk';

async function run(mode: Mode): Promise<number> {
  const bus = createEventBus({
    service: 'bench',
    secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    services: { sink: 'http://127.0.0.1:1/events' },
    logger,
    env: {},
    transport: ack,
    openTelemetry: mode !== 'off',
  });
  bus.declareEvent('bench', ['sink']);
  const started = process.hrtime.bigint();
  for (let i = 0; i < EMITS; i += 1) await bus.emit('bench', payload);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await bus.close();
  return EMITS / seconds;
}

async function main(): Promise<void> {
  const results: Record<Mode, number[]> = { off: [], 'api-only': [], sdk: [] };
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new BatchSpanProcessor({ export: (_spans, done) => done({ code: 0 }), shutdown: async () => {} })],
  });
  const meterProvider = new MeterProvider();
  for (let rep = 0; rep <= REPS; rep += 1) {
    for (const mode of ['off', 'api-only', 'sdk'] as Mode[]) {
      trace.disable();
      metrics.disable();
      if (mode === 'sdk') {
        trace.setGlobalTracerProvider(tracerProvider);
        metrics.setGlobalMeterProvider(meterProvider);
      }
      const rate = await run(mode);
      if (rep > 0) results[mode].push(rate);
      process.stderr.write(`rep ${rep} ${mode}: ${Math.round(rate)} emits/s\n`);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const base = median(results.off);
  console.log('| mode | emits/s (median) | time per emit vs off |');
  console.log('| --- | --- | --- |');
  for (const mode of Object.keys(results) as Mode[]) {
    const m = median(results[mode]);
    console.log(`| ${mode} | ${Math.round(m)} | ${(base / m).toFixed(2)}× |`);
  }
  await tracerProvider.shutdown();
  await meterProvider.shutdown();
}

void main();

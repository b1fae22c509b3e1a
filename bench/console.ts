/**
 * `npx tsx bench/console.ts [--reps 7] [--count 10000]`: how long the console takes to open with
 * `count` dead letters, against the same page with 50 (one page's worth: the baseline), for the
 * in-memory and the SQLite outbox. Measured in the system's Chromium, signed in already, from
 * navigation until the first page of dead letters is on screen; plus the dead-letter request
 * alone (the server's page read). Repetitions interleaved after a discarded warm-up, medians
 * shown. Not a test: nothing is asserted (test/browser/console.test.ts checks that one page is
 * fetched). Setup shared with the tests: test/helpers/console.ts.
 */
import { parseArgs } from 'node:util';
import type { Page } from 'playwright-core';
import { openBrowser, signIn, startManyDeadLetters } from '../test/helpers/console.js';
import { tempDir } from '../test/helpers/temp-dir.js';
import { fmt, median, table } from './lib.js';

const { values } = parseArgs({ options: { reps: { type: 'string', default: '7' }, count: { type: 'string', default: '10000' } } });
const REPS = Number(values.reps);
const COUNT = Number(values.count);

/** Opens the console (the session cookie is already set): total ms, and ms of the dead-letter request. */
async function open(page: Page, url: string): Promise<{ totalMs: number; listMs: number }> {
  const listed = page.waitForResponse((response) => new URL(response.url()).pathname.endsWith('/console/api/dead-letters'));
  const start = performance.now();
  await page.goto(url);
  await page.getByText(/^Page 1 · 50 dead letters$/).waitFor();
  const totalMs = performance.now() - start;
  const response = await listed;
  await response.finished();
  const timing = response.request().timing();
  return { totalMs, listMs: timing.responseEnd - timing.requestStart };
}

async function main(): Promise<void> {
  const dir = tempDir('console-bench');
  const browser = await openBrowser();
  const rows: Array<{ label: string; count: number; url: string; close(): Promise<void>; total: number[]; list: number[] }> = [];
  try {
    for (const store of ['memory', 'SQLite'] as const) {
      for (const count of [50, COUNT]) {
        process.stderr.write(`setting up ${count} dead letters in ${store}\n`);
        const service = await startManyDeadLetters(count, store === 'SQLite' ? { outboxPath: dir.file(`outbox-${count}.db`) } : {});
        rows.push({ label: `${store} outbox, ${count.toLocaleString('en-US')} dead letters${count === 50 ? ' (baseline)' : ''}`, count, url: service.consoleUrl, close: () => service.close(), total: [], list: [] });
      }
    }
    const page = await browser.newPage();
    await signIn(page, rows[0]!.url); // one cookie for 127.0.0.1: the same operator and token on every service
    await page.getByText(/^Page 1 · 50 dead letters$/).waitFor();
    for (let rep = 0; rep <= REPS; rep++) {
      for (const row of rows) {
        const { totalMs, listMs } = await open(page, row.url);
        if (rep > 0) {
          row.total.push(totalMs);
          row.list.push(listMs);
        }
      }
      process.stderr.write(`rep ${rep}${rep === 0 ? ' (warm-up)' : ''} done\n`);
    }
    console.log(`Opening the console, signed in, until the first page of dead letters shows (median of ${REPS}):\n`);
    console.log(
      table(
        ['outbox', 'open ms', 'min–max', 'dead-letter request ms', '÷ baseline'],
        rows.map((row, i) => {
          const baseline = rows[i - (i % 2)]!;
          return [row.label, fmt.ms(median(row.total)), `${fmt.ms(Math.min(...row.total))}–${fmt.ms(Math.max(...row.total))}`, fmt.ms(median(row.list)), fmt.ratio(median(row.total) / median(baseline.total))];
        }),
      ),
    );
  } finally {
    await browser.close();
    for (const row of rows) await row.close();
    dir.remove();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

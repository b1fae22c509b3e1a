/**
 * Regenerates docs/console.png, the console's screenshot in the README, from the browser tests'
 * own setup (test/helpers/console.ts): `users` emitting to `payments` (some delivered, some
 * refused) and to `orders` (down, with a backlog), seen in the system's Chromium.
 *
 * Usage: npx tsx scripts/console-screenshot.ts [out.png]   (default docs/console.png)
 */
import { join } from 'node:path';
import { openBrowser, ordersDown, signIn, startConsoleScenario } from '../test/helpers/console.js';
import { waitFor } from '../test/helpers/wait.js';

async function main(): Promise<void> {
  const out = process.argv[2] ?? join(__dirname, '..', 'docs', 'console.png');
  const [browser, scenario] = await Promise.all([openBrowser({ width: 1360, height: 900 }), startConsoleScenario()]);
  try {
    scenario.reply.refuse = false;
    for (let i = 1; i <= 24; i++) await scenario.bus.emit('user-created', { user_id: `u${i}`, email: `user${i}@example.com` });
    await waitFor(() => scenario.payments.requests.filter((r) => r.status === 200).length === 24, { what: '24 deliveries' });
    scenario.reply.refuse = true;
    scenario.reply.body = '{"error":"invalid_payload","message":"/plan must be equal to one of the allowed values"}';
    for (const plan of ['enterprise', 'gold', 'trial']) await scenario.deadLetter({ user_id: `u-${plan}`, email: `${plan}@example.com`, plan });
    await ordersDown(scenario, 7);

    const page = await browser.newPage();
    await signIn(page, scenario.consoleUrl);
    const rows = page.locator('#dead-letters tbody tr[data-id]');
    await waitFor(async () => (await rows.count()) === 3, { what: 'three dead letters on the page' });
    await rows.first().getByRole('button', { name: /^Payload of/ }).click();
    await page.locator('tr.payload pre').waitFor();
    await page.screenshot({ path: out, fullPage: true });
    console.log(`wrote ${out}`);
  } finally {
    await browser.close();
    await scenario.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

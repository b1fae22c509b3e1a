/**
 * The operations console in a real Chromium (issue 17): sign-in, what it shows, replay and
 * discard, text from the network kept as text, CSRF, and server-side paging. The service is real
 * (Express on 127.0.0.1, HTTP push to a recording server); so is the browser (the system's
 * Chromium through playwright-core, never skipped in CI).
 */
import type { Page } from 'playwright-core';
import { startStandaloneConsole } from '../../src/console/standalone.js';
import { request } from '../helpers/http-client.js';
import { quietLogger } from '../helpers/logger.js';
import { tempDir } from '../helpers/temp-dir.js';
import { startServer } from '../helpers/server.js';
import { describeWithChromium, OPERATOR, openBrowser, TOKEN, ordersDown, signIn, startConsoleScenario, startManyDeadLetters, type ConsoleScenario, type TestBrowser } from '../helpers/console.js';
import { waitFor } from '../helpers/wait.js';

jest.setTimeout(60_000);

const deadLetterRows = (page: Page) => page.locator('#dead-letters tbody tr[data-id]');

describeWithChromium('the console in Chromium', () => {
  let browser: TestBrowser;
  let scenario: ConsoleScenario;
  let page: Page;

  beforeAll(async () => {
    [browser, scenario] = await Promise.all([openBrowser(), startConsoleScenario()]);
    await ordersDown(scenario, 3);
  });
  afterAll(async () => {
    await browser?.close();
    await scenario?.close();
  });
  beforeEach(async () => {
    scenario.reply.refuse = true;
    page = await browser.newPage();
  });
  afterEach(async () => {
    await page.close();
  });

  test('the page before sign-in carries no data, only a password field', async () => {
    const html = await request(scenario.consoleUrl, { method: 'GET' });
    expect(html.status).toBe(200);
    for (const secret of ['payments', 'orders', 'users', OPERATOR]) expect(html.text).not.toContain(secret);

    await page.goto(scenario.consoleUrl);
    const field = page.getByLabel('Operator token');
    await field.waitFor();
    expect(await field.getAttribute('type')).toBe('password');
    expect(await page.locator('#console').isHidden()).toBe(true);
  });

  test('sign in with the token: the operator, the targets and their state', async () => {
    await signIn(page, scenario.consoleUrl);
    await page.getByText(`Signed in as ${OPERATOR}`).waitFor();
    await page.locator('#targets tbody tr[data-target="payments"]').waitFor();
    expect(await page.locator('h1').textContent()).toContain('users');

    // The session survives a reload (the cookie), and signing out leaves nothing on the page.
    await page.reload();
    await page.getByText(`Signed in as ${OPERATOR}`).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByText('Signed out.').waitFor();
    expect(await page.locator('body').innerText()).not.toContain('payments');
    await page.reload();
    await page.getByLabel('Operator token').waitFor();
    expect(await page.locator('#console').isHidden()).toBe(true);

    // A session that ends while the page is open (here: its cookie gone) takes the page back to the sign-in form.
    await signIn(page, scenario.consoleUrl);
    await page.getByText(`Signed in as ${OPERATOR}`).waitFor();
    await browser.context.clearCookies();
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.getByRole('alert').filter({ hasText: 'Your session has ended: sign in again.' }).waitFor();
    expect(await page.locator('#targets tbody tr').count()).toBe(0);
  });

  test('a wrong token shows nothing', async () => {
    const answers: number[] = [];
    page.on('response', (response) => {
      if (response.url().includes('/console/api/')) answers.push(response.status());
    });
    await signIn(page, scenario.consoleUrl, 'not-the-token');
    await page.getByRole('alert').filter({ hasText: 'Wrong token.' }).waitFor();
    expect(await page.locator('#console').isHidden()).toBe(true);
    const text = await page.locator('body').innerText();
    for (const secret of ['payments', 'orders', OPERATOR]) expect(text).not.toContain(secret);
    expect(await page.locator('#targets tbody tr, #dead-letters tbody tr').count()).toBe(0);
    expect(answers).toEqual([401, 401]); // the session check on load, then the sign-in
  });

  test("a down target's backlog is shown beside it", async () => {
    await signIn(page, scenario.consoleUrl);
    const orders = page.locator('#targets tbody tr[data-target="orders"]');
    await orders.waitFor();
    const cells = await orders.locator('th, td').allInnerTexts();
    expect(cells[0]).toBe('orders');
    expect(cells[1]).toMatch(/^down since .+\(\d+ s\)$/);
    expect(cells[2]).toBe('3');
    expect(cells[3]).toMatch(/^\d+ s$/);
    expect(cells[5]).toMatch(/ECONNREFUSED[\s\S]*check\s+EVENTS_SERVICE_ORDERS_URL/);
    expect(await orders.locator('svg[role="img"]').getAttribute('aria-label')).toMatch(/^0 delivered in the last 15 minutes/);
  });

  test('a refused event appears as a dead letter; Replay delivers it once the target accepts', async () => {
    const eventId = await scenario.deadLetter();
    await signIn(page, scenario.consoleUrl);
    const row = deadLetterRows(page).filter({ hasText: eventId });
    await row.waitFor();
    const cells = await row.locator('td').allInnerTexts();
    expect(cells.slice(1, 7)).toEqual([eventId, 'user-created', 'payments', 'refused', '1', '400']);
    expect(cells[7]).toContain('user_id must be a UUID');

    scenario.reply.refuse = false;
    await page.getByRole('button', { name: `Replay user-created ${eventId}` }).click();
    await page.getByText(`Replayed 1 dead letter (user-created ${eventId}).`).waitFor();
    await waitFor(() => scenario.payments.requests.some((r) => r.status === 200 && r.body.includes(eventId)), { what: 'the replayed delivery' });
    await row.waitFor({ state: 'detached' });
    expect((await scenario.bus.deadLetters()).some((letter) => letter.eventId === eventId)).toBe(false);
  });

  test('Discard removes it, after a confirmation', async () => {
    const eventId = await scenario.deadLetter();
    await signIn(page, scenario.consoleUrl);
    const row = deadLetterRows(page).filter({ hasText: eventId });
    await row.waitFor();

    const discard = page.getByRole('button', { name: `Discard user-created ${eventId}` });
    await discard.click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    expect(await dialog.innerText()).toContain(`Discard for good user-created ${eventId}?`);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    expect((await scenario.bus.deadLetters()).some((letter) => letter.eventId === eventId)).toBe(true);

    await discard.click();
    await dialog.getByRole('button', { name: 'Yes, discard' }).click();
    await page.getByText(`Discarded 1 dead letter (user-created ${eventId}).`).waitFor();
    await row.waitFor({ state: 'detached' });
    expect((await scenario.bus.deadLetters()).some((letter) => letter.eventId === eventId)).toBe(false);
    expect(scenario.payments.requests.filter((r) => r.body.includes(eventId))).toHaveLength(1); // never sent again
  });

  test('a refusal body and a payload with markup and script stay text and run nothing', async () => {
    const markup = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script><b>bold</b>';
    scenario.reply.body = markup;
    const eventId = await scenario.deadLetter({ user_id: markup, email: 'ada@example.com', profile: { email: 'b@example.com', note: '</pre><svg onload="window.__pwned=1">' } });
    scenario.reply.body = '{"error":"invalid_payload","message":"user_id must be a UUID"}';
    const dialogs: string[] = [];
    page.on('dialog', (dialog) => void dialogs.push(dialog.message()));

    await signIn(page, scenario.consoleUrl);
    const row = deadLetterRows(page).filter({ hasText: eventId });
    await row.waitFor();
    expect(await row.locator('td.error-text').innerText()).toBe(`HTTP 400: ${markup}`);
    const payments = page.locator('#targets tbody tr[data-target="payments"]');
    expect(await payments.innerText()).toContain(markup);

    await page.getByRole('button', { name: `Payload of user-created ${eventId}` }).click();
    const payload = page.getByLabel(`Payload of user-created ${eventId}`, { exact: true }).and(page.locator('pre'));
    await payload.waitFor();
    expect(JSON.parse(await payload.innerText())).toEqual({
      user_id: markup,
      email: '•••',
      profile: { email: '•••', note: '</pre><svg onload="window.__pwned=1">' },
    });

    expect(await page.locator('main img, main script, main b, main pre svg').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(dialogs).toEqual([]);
  });

  test('the filters (target, type, time) are asked of the server', async () => {
    const eventId = await scenario.deadLetter();
    const lists: URLSearchParams[] = [];
    page.on('request', (sent) => {
      const url = new URL(sent.url());
      if (url.pathname.endsWith('/console/api/dead-letters')) lists.push(url.searchParams);
    });
    await signIn(page, scenario.consoleUrl);
    await deadLetterRows(page).filter({ hasText: eventId }).waitFor();

    await page.getByLabel('Type').fill('order-placed');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByText('No dead letters.').waitFor();
    expect(lists.at(-1)!.get('type')).toBe('order-placed');

    await page.getByRole('button', { name: 'Clear filters' }).click();
    await deadLetterRows(page).filter({ hasText: eventId }).waitFor();
    await page.getByLabel('Since').fill('2999-01-01T00:00:00');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByText('No dead letters.').waitFor();
    expect(new Date(lists.at(-1)!.get('since')!).getFullYear()).toBe(2999);

    await page.getByRole('button', { name: /^Show the \d+ dead letters? of payments$/ }).click();
    await deadLetterRows(page).filter({ hasText: eventId }).waitFor();
    expect(Object.fromEntries(lists.at(-1)!)).toEqual({ limit: '50', target: 'payments' });
  });

  test('a cross-origin POST is refused, from a signed-in browser', async () => {
    const eventId = await scenario.deadLetter();
    await signIn(page, scenario.consoleUrl);
    await page.getByText(`Signed in as ${OPERATOR}`).waitFor();

    // Another origin on the same site (127.0.0.1, another port): the SameSite cookie goes along.
    const api = `${scenario.consoleUrl}/api`;
    const evil = await startServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(`<!doctype html><form method="post" action="${api}/discard" enctype="text/plain"><input name='{"all":true,"x":"' value='"}'></form>
        <script>fetch(${JSON.stringify(`${api}/discard`)}, { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'text/plain' }, body: '{"all":true}' })
          .finally(() => document.forms[0].submit());</script>`);
    });
    try {
      const answers: Array<Promise<[string, number, string]>> = [];
      page.on('response', (response) => {
        const sent = response.request();
        if (response.url() === `${api}/discard`) answers.push(sent.allHeaders().then((headers) => [sent.resourceType(), response.status(), headers.cookie ?? '']));
      });
      const submitted = page.waitForResponse((response) => response.url() === `${api}/discard` && response.request().resourceType() === 'document');
      await page.goto(`${evil.origin}/`);
      const answer = await submitted;
      const seen = await Promise.all(answers);
      expect(seen.map(([kind, status]) => [kind, status])).toEqual([['fetch', 403], ['document', 403]]);
      // Both were refused by the CSRF check (403), not for want of a session (401): the form's navigation carried the cookie.
      expect(seen[1]![2]).toMatch(/^events_console=/);
      expect(JSON.parse(await answer.text())).toMatchObject({ error: 'csrf_failed' });
    } finally {
      await evil.close();
    }
    expect((await scenario.bus.deadLetters()).some((letter) => letter.eventId === eventId)).toBe(true);
  });
});

describeWithChromium('the console with 10,000 dead letters', () => {
  let browser: TestBrowser;
  let service: Awaited<ReturnType<typeof startManyDeadLetters>>;

  beforeAll(async () => {
    [browser, service] = await Promise.all([openBrowser(), startManyDeadLetters(10_000)]);
  });
  afterAll(async () => {
    await browser?.close();
    await service?.close();
  });

  test('the page fetches one page of them, and the next on demand', async () => {
    const page = await browser.newPage();
    const lists: URL[] = [];
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (url.pathname.endsWith('/console/api/dead-letters')) lists.push(url);
    });
    await signIn(page, service.consoleUrl);
    await page.getByText('Page 1 · 50 dead letters').waitFor();
    expect(await deadLetterRows(page).count()).toBe(50);
    expect(lists).toHaveLength(1);
    expect(lists[0]!.searchParams.get('limit')).toBe('50');
    expect(await page.locator('#targets tbody tr[data-target="payments"] td').nth(3).innerText()).toBe('10000');

    const first = await deadLetterRows(page).first().getAttribute('data-id');
    await page.getByRole('button', { name: 'Next page' }).click();
    await page.getByText('Page 2 · 50 dead letters').waitFor();
    expect(lists).toHaveLength(2);
    expect(lists[1]!.searchParams.get('cursor')).toBeTruthy();
    expect(await deadLetterRows(page).first().getAttribute('data-id')).not.toBe(first);
    await page.getByRole('button', { name: 'Previous page' }).click();
    await page.getByText('Page 1 · 50 dead letters').waitFor();
    expect(await deadLetterRows(page).first().getAttribute('data-id')).toBe(first);
    await page.close();
  });
});

describeWithChromium('the standalone console in Chromium', () => {
  test('shows what the outbox file holds, without the running service\'s figures, and replays from it', async () => {
    const dir = tempDir('console-standalone');
    const path = dir.file('outbox.db');
    const service = await startManyDeadLetters(3, { outboxPath: path });
    await service.close();
    const [browser, standalone] = await Promise.all([
      openBrowser(),
      startStandaloneConsole({ location: { outbox: path }, service: 'users', tokens: { [OPERATOR]: TOKEN }, host: '127.0.0.1', port: 0, logger: quietLogger() }),
    ]);
    try {
      const page = await browser.newPage();
      await signIn(page, standalone.url);
      await page.getByText('Page 1 · 3 dead letters').waitFor();
      expect(await page.getByText(/^Served beside the service: what the store holds/).isVisible()).toBe(true);
      const payments = page.locator('#targets tbody tr[data-target="payments"]');
      expect(await payments.locator('th, td').allInnerTexts()).toEqual(['payments', '—', '0', '—', '3', '—', '—']);

      await page.getByRole('button', { name: 'Replay all (filter)' }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Yes, replay' }).click();
      await page.getByText('Replayed 3 dead letters.').waitFor();
      await page.getByText('No dead letters.').waitFor();
      expect(await payments.locator('td').nth(1).innerText()).toBe('3'); // back in the backlog
    } finally {
      await browser.close();
      await standalone.close();
      dir.remove();
    }
  });
});

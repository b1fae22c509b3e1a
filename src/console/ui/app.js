// The events console's one script (issue 17). Plain browser JavaScript, no framework and no build
// step: the whole page weighs a few KB. Every text that comes from the network (names, errors,
// payloads) reaches the page through textContent or an attribute, never as markup.
'use strict';
(() => {
  const api = `${location.pathname.replace(/\/+$/, '')}/api`;
  const $ = (id) => document.getElementById(id);
  const PAGE_SIZE = 50;
  const REFRESH_MS = 5000;
  const state = { csrf: '', cursors: [undefined], page: 0, timer: 0, signedIn: false };

  /** An element with attributes (`text` sets its text, `on<event>` a listener) and children (strings become text nodes). */
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'text') node.textContent = String(value);
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    node.append(...children.filter((child) => child !== undefined && child !== null));
    return node;
  }

  class ApiError extends Error {
    constructor(status, message, retryAfter) {
      super(message);
      this.status = status;
      this.retryAfter = retryAfter;
    }
  }

  /** One call to the console's API, with the session's CSRF token on a state change. A 401 (other than at sign-in) signs out. */
  async function call(method, route, body) {
    const headers = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method !== 'GET') headers['x-csrf-token'] = state.csrf;
    const response = await fetch(api + route, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = response.status === 204 ? {} : await response.json().catch(() => ({}));
    if (response.ok) return data;
    if (response.status === 401 && route !== '/session' && state.signedIn) signOut('Your session has ended: sign in again.');
    throw new ApiError(response.status, typeof data.message === 'string' ? data.message : `HTTP ${response.status}`, response.headers.get('retry-after'));
  }

  function notify(text, isError) {
    const notice = $('notice');
    notice.textContent = text;
    notice.className = isError ? 'error' : '';
  }

  function guardedError(error) {
    if (error instanceof ApiError && error.status === 401) return;
    notify(error instanceof ApiError ? `${error.message} (HTTP ${error.status})` : `The console could not reach the service: ${error.message}`, true);
  }

  /** Runs an action, reporting its failure on the page. */
  const guarded = (action) => (...args) => action(...args).catch(guardedError);

  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

  function duration(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${s % 60} s`;
    const h = Math.floor(m / 60);
    if (h < 48) return `${h} h ${m % 60} min`;
    return `${Math.floor(h / 24)} d ${h % 24} h`;
  }

  function when(iso) {
    if (!iso) return '—';
    const time = new Date(iso);
    return el('time', { datetime: iso, title: iso }, Number.isNaN(time.getTime()) ? String(iso) : time.toLocaleString());
  }

  const cell = (content, attributes) => el('td', attributes, content === undefined || content === null || content === '' ? '—' : content);

  /** Deliveries per minute, oldest first, as an inline SVG bar chart. */
  function chart(counts) {
    const NS = 'http://www.w3.org/2000/svg';
    const svg = (tag, attributes) => {
      const node = document.createElementNS(NS, tag);
      for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
      return node;
    };
    const bar = 6, gap = 2, height = 24, max = Math.max(1, ...counts);
    const total = counts.reduce((sum, n) => sum + n, 0);
    const last = counts[counts.length - 1] || 0;
    const label = `${total} delivered in the last ${counts.length} minutes, ${last} in the last minute`;
    const picture = svg('svg', { class: 'chart', role: 'img', 'aria-label': label, width: counts.length * (bar + gap), height, viewBox: `0 0 ${counts.length * (bar + gap)} ${height}` });
    picture.append(svg('line', { x1: 0, y1: height - 0.5, x2: counts.length * (bar + gap), y2: height - 0.5, class: 'axis' }));
    counts.forEach((n, i) => {
      const h = n === 0 ? 0 : Math.max(2, Math.round((n / max) * (height - 1)));
      const rect = svg('rect', { x: i * (bar + gap), y: height - 1 - h, width: bar, height: h });
      const title = svg('title', {});
      title.textContent = `${n} delivered ${counts.length - 1 - i} min ago`;
      rect.append(title);
      picture.append(rect);
    });
    return el('span', { class: 'activity' }, picture, el('span', { class: 'total', text: `${total}` }));
  }

  function lastError(error) {
    if (!error) return undefined;
    return el('span', { class: 'last-error' },
      error.status !== undefined ? el('strong', { text: `HTTP ${error.status}` }) : undefined,
      el('span', { class: 'message', text: error.status !== undefined && error.message.startsWith(`HTTP ${error.status}: `) ? error.message.slice(`HTTP ${error.status}: `.length) : error.message }),
      error.variable ? el('span', { class: 'variable' }, 'check ', el('code', { text: error.variable })) : undefined);
  }

  function targetState(target, now) {
    if (target.state === 'down') {
      const since = target.downSince ? new Date(target.downSince) : undefined;
      return el('span', { class: 'state down' }, 'down',
        since ? el('span', {}, ' since ', when(target.downSince), ` (${duration(now - since.getTime())})`) : undefined);
    }
    return target.state ? el('span', { class: 'state up', text: target.state }) : undefined;
  }

  function renderOverview(overview) {
    const now = Date.now();
    $('service').textContent = overview.service ? `· ${overview.service}` : '';
    $('standalone').hidden = !overview.standalone;
    $('updated').textContent = `updated ${new Date(now).toLocaleTimeString()}`;
    const rows = overview.targets.map((target) => el('tr', { 'data-target': target.name },
      el('th', { scope: 'row', text: target.name }),
      cell(targetState(target, now)),
      cell(String(target.backlog), { class: 'number' }),
      cell(target.oldestPendingAgeMs === null || target.oldestPendingAgeMs === undefined ? undefined : duration(target.oldestPendingAgeMs)),
      cell(target.deadLetters > 0
        ? el('button', { type: 'button', class: 'link', 'aria-label': `Show the ${plural(target.deadLetters, 'dead letter', 'dead letters')} of ${target.name}`, onclick: () => filterTarget(target.name), text: String(target.deadLetters) })
        : '0', { class: 'number' }),
      cell(lastError(target.lastError)),
      cell(target.deliveredPerMinute ? chart(target.deliveredPerMinute) : undefined)));
    if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: 7, text: 'No target yet: no event has been emitted to one.' })));
    $('targets').tBodies[0].replaceChildren(...rows);
    $('target-names').replaceChildren(...overview.targets.map((target) => el('option', { value: target.name })));

    const connections = Object.entries(overview.consumers || {}).map(([name, c]) => ['consumer', name, c]);
    if (overview.database) connections.push(['database', 'PostgreSQL', overview.database]);
    $('connections-section').hidden = connections.length === 0;
    $('connections').tBodies[0].replaceChildren(...connections.map(([kind, name, c]) => el('tr', {},
      el('th', { scope: 'row' }, `${kind} `, el('code', { text: name })),
      cell(el('span', { class: `state ${c.state === 'down' ? 'down' : 'up'}`, text: c.state })),
      cell(c.downForMs === undefined ? undefined : duration(c.downForMs)))));
  }

  async function loadOverview() {
    renderOverview(await call('GET', '/overview'));
  }

  /** The filter as the form holds it: target and type for the list and the bulk actions, since and until for the list. */
  function filterOf() {
    const form = $('filters');
    const value = (name) => form.elements[name].value.trim();
    const time = (name) => (value(name) ? new Date(value(name)).toISOString() : '');
    return { target: value('target'), type: value('type'), since: time('since'), until: time('until') };
  }

  async function loadDeadLetters() {
    const filter = filterOf();
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    for (const [key, value] of Object.entries(filter)) if (value) query.set(key, value);
    const cursor = state.cursors[state.page];
    if (cursor) query.set('cursor', cursor);
    const page = await call('GET', `/dead-letters?${query}`);
    state.cursors[state.page + 1] = page.next;
    state.cursors.length = state.page + 2;
    const rows = page.items.map(deadLetterRow);
    if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: 9, text: state.page === 0 ? 'No dead letters.' : 'No more dead letters.' })));
    $('dead-letters').tBodies[0].replaceChildren(...rows);
    $('truncated').hidden = !page.truncated;
    $('previous-page').disabled = state.page === 0;
    $('next-page').disabled = !page.next;
    $('page-info').textContent = `Page ${state.page + 1} · ${plural(page.items.length, 'dead letter', 'dead letters')}`;
  }

  const describe = (item) => `${item.type || 'event'} ${item.eventId || item.id}`;

  function deadLetterRow(item) {
    const name = describe(item);
    const row = el('tr', { 'data-id': item.id },
      cell(when(item.time)),
      cell(el('code', { text: item.eventId || '' })),
      cell(item.type, { class: 'name' }),
      cell(item.target, { class: 'name' }),
      cell(item.reason),
      cell(item.attempts === null ? undefined : String(item.attempts), { class: 'number' }),
      cell(item.lastStatus === null ? undefined : String(item.lastStatus), { class: 'number' }),
      cell(item.error, { class: 'error-text', title: item.error || undefined }),
      el('td', { class: 'row-actions' },
        el('button', { type: 'button', 'aria-expanded': 'false', 'aria-label': `Payload of ${name}`, text: 'Payload', onclick: guarded((event) => togglePayload(row, item, event.currentTarget)) }),
        el('button', { type: 'button', 'aria-label': `Replay ${name}`, text: 'Replay', onclick: guarded(() => act('replay', { ids: [item.id] }, name)) }),
        el('button', { type: 'button', class: 'danger', 'aria-label': `Discard ${name}`, text: 'Discard', onclick: guarded(() => act('discard', { ids: [item.id] }, name)) })));
    return row;
  }

  async function togglePayload(row, item, button) {
    const open = row.nextElementSibling && row.nextElementSibling.classList.contains('payload') ? row.nextElementSibling : undefined;
    if (open) {
      open.remove();
      button.setAttribute('aria-expanded', 'false');
      return;
    }
    const letter = await call('GET', `/dead-letters/${encodeURIComponent(item.id)}`);
    const text = typeof letter.payload === 'string' ? letter.payload : JSON.stringify(letter.payload, null, 2);
    row.after(el('tr', { class: 'payload' }, el('td', { colspan: 9 }, el('pre', { 'aria-label': `Payload of ${describe(item)}`, text }))));
    button.setAttribute('aria-expanded', 'true');
  }

  /** Asks in a modal dialog; resolves true when the operator confirms. */
  function confirmed(text, ok) {
    const dialog = $('confirm');
    $('confirm-text').textContent = text;
    $('confirm-ok').textContent = ok;
    dialog.returnValue = '';
    dialog.showModal();
    return new Promise((resolve) => dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true }));
  }

  /** Replays or discards a selection (one dead letter, a filter's, or all), the discards and bulk replays after a confirmation. */
  async function act(action, selection, what) {
    const bulk = !selection.ids;
    if ((bulk || action === 'discard') && !(await confirmed(
      `${action === 'replay' ? 'Replay' : 'Discard for good'} ${what}?`,
      action === 'replay' ? 'Yes, replay' : 'Yes, discard',
    ))) return;
    const result = await call('POST', `/${action}`, selection);
    const count = action === 'replay' ? result.replayed : result.discarded;
    notify(`${action === 'replay' ? 'Replayed' : 'Discarded'} ${plural(count, 'dead letter', 'dead letters')}${bulk ? '' : ` (${what})`}.`);
    await Promise.all([loadDeadLetters(), loadOverview()]);
  }

  function bulk(action) {
    const { target, type } = filterOf();
    const filter = { ...(target ? { target } : {}), ...(type ? { type } : {}) };
    const what = target || type
      ? `every dead letter${target ? ` to ${target}` : ''}${type ? ` of type ${type}` : ''} (the time filter does not apply)`
      : 'every dead letter of every target';
    return act(action, target || type ? { filter } : { all: true }, what);
  }

  function filterTarget(name) {
    const form = $('filters');
    for (const field of ['type', 'since', 'until']) form.elements[field].value = '';
    form.elements.target.value = name;
    state.cursors = [undefined];
    state.page = 0;
    guarded(loadDeadLetters)();
  }

  function schedule() {
    clearTimeout(state.timer);
    if (!state.signedIn) return;
    state.timer = setTimeout(() => {
      if (document.hidden) return schedule();
      loadOverview().then(() => {
        if ($('notice').className === 'error') notify('');
      }, guardedError).finally(schedule);
    }, REFRESH_MS);
  }

  function signIn(session) {
    state.csrf = session.csrf;
    state.signedIn = true;
    state.cursors = [undefined];
    state.page = 0;
    $('operator').textContent = `Signed in as ${session.operator}`;
    $('who').hidden = false;
    $('sign-in').hidden = true;
    $('console').hidden = false;
    notify('');
    guarded(() => Promise.all([loadOverview(), loadDeadLetters()]))().finally(schedule);
  }

  /** Back to the sign-in form, with nothing of the service's left on the page. */
  function signOut(message) {
    state.signedIn = false;
    state.csrf = '';
    clearTimeout(state.timer);
    for (const id of ['targets', 'connections', 'dead-letters']) $(id).tBodies[0].replaceChildren();
    for (const id of ['service', 'operator', 'updated', 'page-info', 'notice']) $(id).textContent = '';
    $('target-names').replaceChildren();
    $('filters').reset();
    $('console').hidden = true;
    $('who').hidden = true;
    $('sign-in').hidden = false;
    $('sign-in-error').textContent = message || '';
    $('token').focus();
  }

  function start() {
    $('sign-in').addEventListener('submit', (event) => {
      event.preventDefault();
      const field = $('token');
      $('sign-in-error').textContent = '';
      call('POST', '/session', { token: field.value }).then((session) => {
        field.value = '';
        signIn(session);
      }, (error) => {
        field.select();
        $('sign-in-error').textContent = !(error instanceof ApiError) ? `The console could not reach the service: ${error.message}`
          : error.status === 401 ? 'Wrong token.'
            : error.status === 429 ? `Too many failed attempts: try again in ${error.retryAfter || 'a few'} s.`
              : error.message;
      });
    });
    $('sign-out').addEventListener('click', () => call('DELETE', '/session').catch(() => {}).finally(() => signOut('Signed out.')));
    $('filters').addEventListener('submit', (event) => {
      event.preventDefault();
      state.cursors = [undefined];
      state.page = 0;
      guarded(loadDeadLetters)();
    });
    $('filters').addEventListener('reset', () => setTimeout(() => {
      if (!state.signedIn) return;
      state.cursors = [undefined];
      state.page = 0;
      guarded(loadDeadLetters)();
    }));
    $('next-page').addEventListener('click', guarded(() => {
      state.page += 1;
      return loadDeadLetters();
    }));
    $('previous-page').addEventListener('click', guarded(() => {
      state.page = Math.max(0, state.page - 1);
      return loadDeadLetters();
    }));
    $('refresh').addEventListener('click', guarded(() => Promise.all([loadOverview(), loadDeadLetters()])));
    $('replay-filtered').addEventListener('click', guarded(() => bulk('replay')));
    $('discard-filtered').addEventListener('click', guarded(() => bulk('discard')));
    $('confirm-ok').addEventListener('click', () => $('confirm').close('ok'));
    $('confirm-cancel').addEventListener('click', () => $('confirm').close('cancel'));
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && state.signedIn) guarded(loadOverview)();
    });
    call('GET', '/session').then(signIn, () => signOut());
  }

  start();
})();

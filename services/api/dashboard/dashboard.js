// The operator dashboard (README, Dashboard): plain DOM, no framework, no build step; every call goes to this API.
// Loaded as a module from /dashboard (strict CSP: no inline script, no inline handlers; text only, never innerHTML).
import { parsePrometheusText, serviceStats } from './prom-text.js';
import { readEventStream } from './sse.js';

const $ = (id) => document.getElementById(id);
const KEY_API = 'lookup.apiKey';
const KEY_ADMIN = 'lookup.adminKey';

/** An element with properties (dataset, className, ...) and children (strings become text). */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k === 'on') for (const [type, fn] of Object.entries(v)) node.addEventListener(type, fn);
    else node[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

function headers({ admin = false, json = false } = {}) {
  const h = {};
  const apiKey = sessionStorage.getItem(KEY_API);
  const adminKey = sessionStorage.getItem(KEY_ADMIN);
  if (apiKey) h['x-api-key'] = apiKey;
  if (admin && adminKey) h['x-admin-key'] = adminKey;
  if (json) h['content-type'] = 'application/json';
  return h;
}

/** A JSON call to the API; throws an Error with `status` and the error body when the answer is not 2xx. */
async function call(path, { method = 'GET', body, admin = false } = {}) {
  const res = await fetch(path, { method, headers: headers({ admin, json: body !== undefined }), body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!res.ok) throw Object.assign(new Error((data && data.message) || `HTTP ${res.status}`), { status: res.status, body: data });
  return data;
}

/** What an operator should read when a call failed. */
function explain(err, { admin = false } = {}) {
  if (err.status === 401) {
    const code = err.body && err.body.code;
    if (code === 'ADMIN_KEY_REQUIRED' || code === 'ADMIN_KEY_INVALID') return 'Enter the admin key (ADMIN_API_KEY) above.';
    return 'Enter a valid API key (API_KEYS) above.';
  }
  if (err.status === 404 && admin) return 'Admin routes are off: start the API with ADMIN_API_KEY set.';
  if (err.status === 429) return `Rate limited; retrying shortly. ${err.message}`;
  return err.message || String(err);
}

function note(id, text, isError = false) {
  const n = $(id);
  n.textContent = text;
  n.classList.toggle('error', isError);
}

const fmtTime = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '');
const fmtMs = (seconds) => (seconds === null || seconds === undefined ? '–' : `${(seconds * 1000).toFixed(seconds < 0.01 ? 2 : 0)} ms`);
const badge = (status) => el('span', { className: `status status-${status}` }, status);
const cell = (text, className = '') => el('td', { className }, text);

// --- keys ---------------------------------------------------------------------------------------------------------

function setupKeys() {
  $('api-key').value = sessionStorage.getItem(KEY_API) || '';
  $('admin-key').value = sessionStorage.getItem(KEY_ADMIN) || '';
  $('keys').addEventListener('submit', (e) => {
    e.preventDefault();
    for (const [id, key] of [['api-key', KEY_API], ['admin-key', KEY_ADMIN]]) {
      const v = $(id).value.trim();
      if (v) sessionStorage.setItem(key, v);
      else sessionStorage.removeItem(key);
    }
    refreshAll();
  });
}

// --- submit and watch ---------------------------------------------------------------------------------------------

async function loadServices() {
  const box = $('services');
  try {
    const services = await call('/api/lookup/services');
    box.replaceChildren(el('legend', {}, 'Services'));
    for (const s of services) {
      box.append(el('label', { title: s.description }, el('input', { type: 'checkbox', name: 'service', value: s.name, checked: true }), ` ${s.name}`));
    }
  } catch (err) {
    note('submit-status', `Could not load the services: ${explain(err)}`, true);
  }
}

/** A one-line summary of a result's data, for the table; the whole JSON sits behind <details>. */
function summarise(r) {
  if (!r.success) return [r.errorMessage || r.status, r.errorCode ? ` (${r.errorCode})` : ''].join('');
  const d = r.data || {};
  switch (r.serviceType) {
    case 'GeoIP': return d.found ? [d.city, d.region, d.country || d.countryCode].filter(Boolean).join(', ') || 'found' : d.reason || 'not found';
    case 'Ping': return d.reachable ? `reachable${d.rtt ? `, avg ${d.rtt.avgMs} ms` : ''} (${d.method})` : `unreachable (${d.method})`;
    case 'RDAP': return d.found ? [d.name || d.ldhName, d.handle, d.registrant || d.registrar].filter(Boolean).join(' · ') : 'not found';
    case 'ReverseDNS': return d.found ? d.hostname : 'no PTR record';
    case 'DNS': return d.ptr ? `PTR ${d.ptr.join(', ') || 'none'}` : Object.keys(d).filter((k) => Array.isArray(d[k]) && d[k].length).join(', ') || 'no records';
    default: return 'ok';
  }
}

let watching = null;

function renderResult(r) {
  const row = document.querySelector(`#live-results tr[data-service="${CSS.escape(r.serviceType)}"]`) || el('tr', { dataset: { service: r.serviceType } });
  row.dataset.status = r.status;
  const detail = el('details', {}, el('summary', {}, summarise(r)), el('pre', {}, JSON.stringify(r.data ?? r, null, 2)));
  row.replaceChildren(cell(r.serviceType), el('td', {}, badge(r.status)), cell(r.durationMs ?? '', 'num'), el('td', {}, detail));
  if (!row.isConnected) $('live-results').append(row);
}

function setJobState(status) {
  const s = $('live-state');
  s.textContent = status;
  s.className = `badge status status-${status}`;
  $('live').dataset.status = status;
}

/** Follows a job's event stream (fetch, so the API key header goes along), resuming with Last-Event-ID. */
async function watch(jobId, services) {
  if (watching) watching.abort();
  const controller = new AbortController();
  watching = controller;
  $('live').hidden = false;
  $('live-job').textContent = jobId;
  $('live').dataset.jobId = jobId;
  setJobState('Pending');
  $('live-results').replaceChildren(...services.map((name) => el('tr', { dataset: { service: name, status: 'waiting' } }, cell(name), el('td', {}, badge('waiting')), cell(''), cell(''))));
  let lastId;
  let finished = false;
  const onEvent = (e) => {
    let payload;
    try {
      payload = JSON.parse(e.data);
    } catch {
      return;
    }
    if (e.event === 'result') renderResult(payload);
    else if (e.event === 'status' || e.event === 'completed' || e.event === 'cancelled') {
      for (const r of payload.results || []) renderResult(r);
      setJobState(payload.status || (e.event === 'cancelled' ? 'Cancelled' : 'Completed'));
      if (e.event !== 'status') finished = true;
    }
  };
  for (let attempt = 0; !finished && attempt < 6 && !controller.signal.aborted; attempt++) {
    try {
      const h = headers();
      if (lastId) h['last-event-id'] = lastId;
      const ended = await readEventStream(`/api/lookup/${encodeURIComponent(jobId)}/events`, h, (e) => {
        onEvent(e);
        if (e.id) lastId = e.id;
      }, controller.signal);
      if (ended === null) break; // 204: nothing after lastId
    } catch (err) {
      if (controller.signal.aborted) return;
      if (err.status && err.status < 500 && err.status !== 429) {
        note('submit-status', `Event stream: ${explain(err)}`, true);
        return;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  if (finished) refreshJobs();
}

function setupSubmit() {
  $('submit-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const services = [...document.querySelectorAll('#services input[name=service]:checked')].map((i) => i.value);
    const target = $('target').value.trim();
    if (services.length === 0) return note('submit-status', 'Pick at least one service.', true);
    $('submit-button').disabled = true;
    note('submit-status', 'Submitting…');
    try {
      const accepted = await call('/api/lookup', { method: 'POST', body: { target, services } });
      note('submit-status', accepted.message);
      refreshJobs();
      void watch(accepted.jobId, services);
    } catch (err) {
      note('submit-status', explain(err), true);
    } finally {
      $('submit-button').disabled = false;
    }
  });
}

// --- recent jobs --------------------------------------------------------------------------------------------------

let jobsCursor = null;

function jobRow(j) {
  const open = el('button', { type: 'button', className: 'small', title: 'Show its results', on: { click: () => void watch(j.jobId, j.requestedServices) } }, j.jobId.slice(0, 8));
  return el('tr', { dataset: { jobId: j.jobId, status: j.status } }, cell(fmtTime(j.createdAt)), cell(j.target), el('td', {}, badge(j.status)), cell(j.requestedServices.join(', ')), el('td', {}, open));
}

async function refreshJobs(more = false) {
  try {
    const q = new URLSearchParams({ limit: '15' });
    if (more && jobsCursor) q.set('cursor', jobsCursor);
    const page = await call(`/api/lookup?${q}`);
    const rows = page.jobs.map(jobRow);
    if (more) $('jobs').append(...rows);
    else $('jobs').replaceChildren(...rows);
    jobsCursor = page.nextCursor;
    $('jobs-more').hidden = !jobsCursor;
    note('jobs-note', page.jobs.length || more ? '' : 'No jobs yet (jobs are kept for JOB_TTL_SECONDS).');
  } catch (err) {
    note('jobs-note', explain(err), true);
  }
}

// --- service metrics ----------------------------------------------------------------------------------------------

async function refreshMetrics() {
  let text;
  try {
    const res = await fetch('/metrics', { headers: headers() });
    if (!res.ok) {
      $('service-stats').replaceChildren();
      return note('metrics-note', `Metrics not available (GET /metrics answered ${res.status}).`);
    }
    text = await res.text();
  } catch (err) {
    return note('metrics-note', `Metrics not available (${err.message}).`, true);
  }
  const stats = serviceStats(parsePrometheusText(text));
  $('service-stats').replaceChildren(...stats.map((s) => el('tr', { dataset: { service: s.service } },
    cell(s.service),
    cell(s.successRate === null ? '–' : `${(s.successRate * 100).toFixed(1)} %`, 'num'),
    cell(`${s.succeeded} ok / ${s.failed} failed`, 'num'),
    cell(fmtMs(s.meanSeconds), 'num'), cell(fmtMs(s.p50Seconds), 'num'), cell(fmtMs(s.p95Seconds), 'num'))));
  note('metrics-note', stats.length ? 'Outcomes of the jobs this API process saw complete (lookup_api_service_*).' : 'No completed job counted yet.');
}

// --- admin panels -------------------------------------------------------------------------------------------------

async function refreshQueues() {
  try {
    const s = await call('/api/admin/queues', { admin: true });
    if (!s.available) {
      $('queues').replaceChildren();
      return note('queues-note', `Queue depths not available: ${s.reason}`);
    }
    $('queues').replaceChildren(...s.queues.map((q) => el('tr', { dataset: { queue: q.name } },
      cell(q.name), cell(q.ready, 'num'), cell(q.unacked, 'num'), cell(q.consumers, 'num'), cell(q.publishRate ?? '–', 'num'), cell(q.deliverRate ?? '–', 'num'))));
    note('queues-note', `vhost ${s.vhost}, from RabbitMQ's management API`);
  } catch (err) {
    $('queues').replaceChildren();
    note('queues-note', explain(err, { admin: true }), err.status !== 404);
  }
}

/** A button that acts on the second click within 3 s (a discard cannot be undone). */
function confirmButton(label, className, action) {
  let armed = false;
  const b = el('button', { type: 'button', className });
  b.textContent = label;
  b.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      b.textContent = 'Sure?';
      setTimeout(() => { armed = false; b.textContent = label; }, 3000);
      return;
    }
    b.disabled = true;
    await action();
  });
  return b;
}

async function deadLetterAction(kind, messageId) {
  try {
    if (kind === 'replay') await call('/api/admin/dead-letters/replay', { method: 'POST', body: { messageId }, admin: true });
    else await call(`/api/admin/dead-letters?${new URLSearchParams({ messageId })}`, { method: 'DELETE', admin: true });
    note('dl-note', `${kind === 'replay' ? 'Replayed' : 'Discarded'} ${messageId}.`);
  } catch (err) {
    note('dl-note', explain(err, { admin: true }), true);
  }
  refreshDeadLetters(false);
}

async function refreshDeadLetters(updateNote = true) {
  try {
    const { count, messages } = await call('/api/admin/dead-letters?limit=50', { admin: true });
    $('dead-letters').replaceChildren(...messages.map((m) => el('tr', { dataset: { messageId: m.messageId || '' } },
      cell(fmtTime(m.deadLetteredAt)), cell(m.originalQueue || m.routingKey), cell(m.reason || ''), cell(m.jobId ? m.jobId.slice(0, 8) : ''),
      el('td', {}, m.messageId ? el('span', {},
        el('button', { type: 'button', className: 'small', on: { click: () => deadLetterAction('replay', m.messageId) } }, 'Replay'), ' ',
        confirmButton('Discard', 'small danger', () => deadLetterAction('discard', m.messageId))) : ''))));
    if (updateNote) note('dl-note', count ? `${count} in the dead-letter queue${count > messages.length ? ` (first ${messages.length} shown)` : ''}.` : 'The dead-letter queue is empty.');
  } catch (err) {
    $('dead-letters').replaceChildren();
    note('dl-note', explain(err, { admin: true }), err.status !== 404);
  }
}

async function refreshResources() {
  try {
    const [{ workers }, { pins }] = await Promise.all([call('/api/admin/resources/workers', { admin: true }), call('/api/admin/resources/pins', { admin: true })]);
    $('workers').replaceChildren(...workers.map((w) => el('tr', { dataset: { worker: w.id } },
      cell(w.id), cell(w.healthy ? 'yes' : 'NO'), cell(w.draining ? 'yes' : 'no'), cell(w.resources.length, 'num'), cell(fmtTime(w.lastBeat)))));
    $('pins').replaceChildren(...pins.map((p) => el('tr', { dataset: { key: p.key } }, cell(p.key), cell(p.owner), cell(p.epoch, 'num'), cell(p.leased ? 'yes' : 'no'))));
    note('resources-note', workers.length ? '' : 'No resource worker is running.');
  } catch (err) {
    $('workers').replaceChildren();
    $('pins').replaceChildren();
    note('resources-note', explain(err, { admin: true }), err.status !== 404);
  }
}

// --- start ----------------------------------------------------------------------------------------------------------

function refreshAll() {
  void loadServices();
  void refreshJobs();
  void refreshMetrics();
  void refreshQueues();
  void refreshDeadLetters();
  void refreshResources();
}

/** Runs `fn` every `ms` while the page is visible, never two at once. */
function every(ms, fn) {
  let busy = false;
  setInterval(async () => {
    if (busy || document.hidden) return;
    busy = true;
    try {
      await fn();
    } finally {
      busy = false;
    }
  }, ms);
}

setupKeys();
setupSubmit();
$('jobs-refresh').addEventListener('click', () => void refreshJobs());
$('jobs-more').addEventListener('click', () => void refreshJobs(true));
$('dl-refresh').addEventListener('click', () => void refreshDeadLetters());
refreshAll();
every(5000, () => refreshJobs());
every(10_000, refreshMetrics);
every(5000, refreshQueues);
every(15_000, () => refreshDeadLetters());
every(10_000, refreshResources);

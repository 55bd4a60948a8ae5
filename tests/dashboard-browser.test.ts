// The dashboard end to end in a real headless browser (issue 13): Debian's Chromium driven by playwright-core (which
// never downloads a browser), against the whole suite with the loopback fixtures. Saves a screenshot as a test
// artifact (test-artifacts/dashboard.png, ignored by git).
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { RoutingKeys, type JobDocument } from '@lookup/contracts';
import { topology } from '@lookup/messaging';
import { startDnsFixture, startRdapFixture } from './fixtures/index.ts';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { ENTRY_POINTS, startSuite, waitFor, type Suite } from './support/processes.ts';
import { fixtureEnv, REPO_ROOT } from './support/env.ts';
import { rawAmqp } from './support/amqp.ts';

// The browser globals the functions run in the page use (this project's TypeScript has no DOM lib).
interface PageElement { dataset: Record<string, string | undefined>; textContent: string | null; value: string }
declare const document: { getElementById(id: string): PageElement | null; querySelectorAll(selector: string): Iterable<PageElement> };

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const API_KEY = 'dash-key';
const ADMIN_KEY = 'dash-admin';
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');

const ns = newNamespace('dash');
let suite: Suite;
let rdap: Awaited<ReturnType<typeof startRdapFixture>>;
let dns: Awaited<ReturnType<typeof startDnsFixture>>;
let context: BrowserContext;
let profile: string;
let dataDir: string;
const browserProblems: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    // Never skipped (CI runs it: .ci/run installs chromium); outside CI, say how to get it.
    throw new Error(`the dashboard test needs Chromium at ${CHROMIUM}: install it with 'sudo apt-get install chromium' (Debian; .ci/run does this in CI)`);
  }
  [rdap, dns] = await Promise.all([startRdapFixture({}), startDnsFixture({})]);
  dataDir = mkdtempSync(path.join(tmpdir(), `${ns}-data-`));
  suite = await startSuite({
    namespace: ns,
    services: Object.keys(ENTRY_POINTS), // every service, a resource worker too
    env: fixtureEnv({ rdapUrl: rdap.url, dnsAddress: dns.address }, { API_KEYS: API_KEY, ADMIN_API_KEY: ADMIN_KEY, PING_TIMEOUT_MS: '1000', RESOURCE_DATA_DIR: dataDir }),
  });
  profile = mkdtempSync(path.join(tmpdir(), 'dashboard-chromium-'));
  context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, viewport: { width: 1400, height: 1000 } });
});

afterAll(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await suite?.stop();
  await Promise.all([rdap?.close(), dns?.close()]);
  await cleanupNamespace(ns);
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function openDashboard(): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (err) => browserProblems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/status of 40[14]/.test(msg.text())) browserProblems.push(`console: ${msg.text()}`);
  });
  const res = await page.goto(`${suite.apiUrl}/`); // GET / leads to the dashboard
  expect(res?.status()).toBe(200);
  expect(new URL(page.url()).pathname).toBe('/dashboard');
  await page.fill('#api-key', API_KEY);
  await page.fill('#admin-key', ADMIN_KEY);
  await page.click('#keys button[type=submit]');
  return page;
}

const api = async <T>(p: string): Promise<{ status: number; body: T }> => {
  const res = await fetch(`${suite.apiUrl}${p}`, { headers: { 'x-api-key': API_KEY, 'x-admin-key': ADMIN_KEY } });
  return { status: res.status, body: (await res.json().catch(() => null)) as T };
};

describe('dashboard in Chromium', () => {
  it('submits a loopback lookup, shows every service result live, lists the job, and shows the operator panels', async () => {
    const page = await openDashboard();
    await page.waitForSelector('#services input[name=service]');
    const offered = await page.$$eval('#services input[name=service]', (boxes) => boxes.map((b) => (b as unknown as PageElement).value));
    expect(offered).toEqual(['GeoIP', 'Ping', 'RDAP', 'ReverseDNS', 'DNS']);

    await page.fill('#target', '127.0.0.2');
    await page.click('#submit-button');
    // Every service's result arrives over the event stream and is shown; the job ends Completed.
    await page.waitForFunction(
      (n) => {
        const rows = [...document.querySelectorAll('#live-results tr[data-service]')];
        return rows.length === n && rows.every((r) => r.dataset.status !== 'waiting') && document.getElementById('live')!.dataset.status === 'Completed';
      },
      offered.length,
      { timeout: 60_000 },
    );
    const jobId = (await page.textContent('#live-job'))!.trim();
    const shown = await page.$$eval('#live-results tr[data-service]', (rows) => rows.map((r) => [(r as unknown as PageElement).dataset.service, (r as unknown as PageElement).dataset.status]));
    const doc = (await api<JobDocument>(`/api/lookup/${jobId}`)).body;
    expect(doc.status).toBe('Completed');
    expect(Object.fromEntries(shown)).toEqual(Object.fromEntries(doc.results.map((r) => [r.serviceType, r.status])));
    expect(doc.results.every((r) => r.status === 'Succeeded')).toBe(true);
    expect(await page.textContent('#live-results tr[data-service="ReverseDNS"] summary')).toBe('fixture-host.example.test');

    // The recent-jobs panel lists it, Completed.
    await page.waitForSelector(`#jobs tr[data-job-id="${jobId}"][data-status="Completed"]`, { timeout: 15_000 });
    expect(await page.textContent(`#jobs tr[data-job-id="${jobId}"]`)).toContain('127.0.0.2');

    // Services: the API's /metrics when it has one, else it says so.
    const metrics = await fetch(`${suite.apiUrl}/metrics`, { headers: { 'x-api-key': API_KEY } });
    if (metrics.status === 200) await page.waitForSelector('#service-stats tr[data-service="GeoIP"]', { timeout: 15_000 });
    else await page.waitForFunction(() => document.getElementById('metrics-note')!.textContent!.includes('Metrics not available'));

    // Queues: the suite's own queues from the management API, or why not.
    const queues = (await api<{ available: boolean; reason?: string }>('/api/admin/queues')).body;
    if (queues.available) await page.waitForSelector(`#queues tr[data-queue="${ns}.saga"]`, { timeout: 15_000 });
    else expect(await page.textContent('#queues-note')).toBe(`Queue depths not available: ${queues.reason}`);

    // Resource workers and pins: the one worker, and the key a request just pinned to it.
    const query = await fetch(`${suite.apiUrl}/api/resources/db/dashboard`, {
      method: 'POST',
      headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'SELECT 1 AS one' }),
    });
    expect(query.status).toBe(200);
    const owner = query.headers.get('x-resource-owner')!;
    await page.waitForSelector(`#pins tr[data-key="db/dashboard"]`, { timeout: 20_000 });
    expect(await page.textContent('#pins tr[data-key="db/dashboard"]')).toContain(owner);
    expect(await page.textContent(`#workers tr[data-worker="${owner}"]`)).toContain('yes');

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true });
    expect(browserProblems).toEqual([]);
    await page.close();
  });

  it('lists a dead letter with its reason, and discards it from the page (two clicks)', async () => {
    const t = topology(ns);
    const amqp = await rawAmqp();
    try {
      await amqp.publish(t.exchanges.events, RoutingKeys.jobSubmitted, { nope: true }, { messageId: 'dash-poison-1' });
    } finally {
      await amqp.close();
    }
    await waitFor(async () => ((await api<{ count: number }>('/api/admin/dead-letters')).body.count === 1 ? true : undefined), 15_000);
    const page = await openDashboard();
    const row = '#dead-letters tr[data-message-id="dash-poison-1"]';
    await page.waitForSelector(row, { timeout: 15_000 });
    expect(await page.textContent(row)).toMatch(/schema|invalid|validation/i);
    await page.click(`${row} button.danger`);
    await page.click(`${row} button.danger`); // "Sure?"
    await page.waitForSelector(row, { state: 'detached', timeout: 15_000 });
    expect((await api<{ count: number }>('/api/admin/dead-letters')).body.count).toBe(0);
    expect(await page.textContent('#dl-note')).toBe('Discarded dash-poison-1.');
    expect(browserProblems).toEqual([]);
    await page.close();
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobDocument } from '@lookup/contracts';
import { startRdapFixture } from './fixtures/index.ts';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { startSuite, waitFor, type Suite } from './support/processes.ts';

// Cancellation that stops work: DELETE broadcasts job.cancelled, the worker running the lookup aborts it through
// its AbortSignal. The RDAP fixture holds every answer for 60 s, far longer than the test waits, so a closed
// connection before any answer can only be the worker's abort.
const FIXTURE_DELAY_MS = 60_000;
const ns = newNamespace('cancel');
let suite: Suite;
let rdap: Awaited<ReturnType<typeof startRdapFixture>>;

beforeAll(async () => {
  rdap = await startRdapFixture({ delayMs: FIXTURE_DELAY_MS });
  suite = await startSuite({
    namespace: ns,
    services: ['api', 'saga', 'rdap'],
    env: { RDAP_BASE_URL: rdap.url, ALLOW_PRIVATE_TARGETS: 'true', LOOKUP_TIMEOUT_MS: '120000', RETRY_MAX_ATTEMPTS: '1' },
  });
});

afterAll(async () => {
  await suite?.stop();
  await rdap?.close();
  await cleanupNamespace(ns);
});

describe('cancellation', () => {
  it('aborts a lookup already running in a worker, and the result says Cancelled', async () => {
    const res = await fetch(`${suite.apiUrl}/api/lookup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ target: '127.0.0.2', services: ['RDAP'] }),
    });
    expect(res.status).toBe(202);
    const { jobId } = (await res.json()) as { jobId: string };
    // The worker's request is at the fixture: the lookup is running.
    await waitFor(async () => (rdap.requests === 1 ? true : undefined), 20_000);
    expect(rdap.abandoned).toBe(0);

    const cancel = await fetch(`${suite.apiUrl}/api/lookup/${jobId}`, { method: 'DELETE' });
    expect(cancel.status).toBe(202);

    // The worker hung up on the fixture, which had not answered (it never answers within this test).
    await waitFor(async () => (rdap.abandoned === 1 ? true : undefined), 20_000);
    const worker = suite.processes.find((p) => p.name === 'rdap')!;
    await waitFor(async () => (worker.lines.some((l) => l.includes(jobId) && l.includes('lookup aborted')) ? true : undefined), 5_000);

    const doc = (await (await fetch(`${suite.apiUrl}/api/lookup/${jobId}`)).json()) as JobDocument;
    expect(doc.status).toBe('Cancelled');
    expect(doc.results).toEqual([expect.objectContaining({ serviceType: 'RDAP', status: 'Cancelled', success: false })]);
    // Aborted, not failed and retried: one request only.
    expect(rdap.requests).toBe(1);
  });
});

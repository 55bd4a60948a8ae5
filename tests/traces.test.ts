import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobDocument } from '@lookup/contracts';
import { startDnsFixture, startRdapFixture } from './fixtures/index.ts';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { startOtlpReceiver, SpanKinds, type OtlpReceiver, type ReceivedSpan } from './support/otlp-receiver.ts';
import { startSuite, waitFor, type Suite } from './support/processes.ts';

// OpenTelemetry traces of the whole suite: every process started as its `start:<name>` script runs it (with the
// telemetry `--import`), exporting OTLP/HTTP JSON to a receiver on loopback in this test.
const WORKERS = ['lookup-geoip', 'lookup-ping', 'lookup-rdap', 'lookup-reverse-dns', 'lookup-dns'];
// RDAP answers 503 for this name (the fixture's `status-<code>` names): attempt 1 fails, attempt 2 is the retry.
const RETRIED_TARGET = 'status-503.test';
// A job without a tenant is dispatched by the API; a tenant's job (TENANTS) goes through the saga.
const PLAIN_KEY = 'traces-plain-key';
const TENANT_KEY = 'traces-tenant-key';

let rdap: Awaited<ReturnType<typeof startRdapFixture>>;
let dns: Awaited<ReturnType<typeof startDnsFixture>>;

const suiteEnv = () => ({
  RDAP_BASE_URL: rdap.url,
  DNS_SERVERS: dns.address,
  ALLOW_PRIVATE_TARGETS: 'true',
  PING_COUNT: '1',
  PING_TIMEOUT_MS: '1000',
  RETRY_MAX_ATTEMPTS: '2',
  RETRY_BASE_DELAY_MS: '10',
  RETRY_MAX_DELAY_MS: '20',
  RATE_LIMIT_SUBMIT_PER_MIN: '1000',
  API_KEYS: PLAIN_KEY,
  TENANTS: `traced:${TENANT_KEY}:0:0`,
  OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
  OTEL_BSP_SCHEDULE_DELAY: '100',
});

beforeAll(async () => {
  [rdap, dns] = await Promise.all([startRdapFixture({}), startDnsFixture({ records: { a: { [RETRIED_TARGET]: ['127.0.0.2'] } } })]);
});

afterAll(async () => {
  await Promise.all([rdap?.close(), dns?.close()]);
});

async function submitAndWait(suite: Suite, body: unknown, key = PLAIN_KEY): Promise<JobDocument> {
  const res = await fetch(`${suite.apiUrl}/api/lookup`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify(body) });
  expect(res.status).toBe(202);
  const { statusUrl } = (await res.json()) as { statusUrl: string };
  return waitFor(async () => {
    const doc = (await (await fetch(`${suite.apiUrl}${statusUrl}`, { headers: { 'x-api-key': key } })).json()) as JobDocument;
    return doc.status === 'Completed' ? doc : undefined;
  }, 30_000);
}

/** The span's chain of ancestors within `spans`, nearest first. */
function ancestors(span: ReceivedSpan, byId: Map<string, ReceivedSpan>): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (let p = byId.get(span.parentSpanId); p; p = byId.get(p.parentSpanId)) out.push(p);
  return out;
}

describe('traces with OTEL_EXPORTER_OTLP_ENDPOINT set', () => {
  const ns = newNamespace('traces');
  let suite: Suite;
  let receiver: OtlpReceiver;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    // Loading the SDK and instrumentations costs every process about a CPU-second at start: seven at once on a
    // busy 2-core machine need longer than the default.
    suite = await startSuite({ namespace: ns, env: { ...suiteEnv(), OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url }, readyTimeoutMs: 120_000 });
  });

  afterAll(async () => {
    await suite?.stop();
    await receiver?.close();
    await cleanupNamespace(ns);
  });

  /**
   * Waits until the job's one trace holds `done`, a span from each of `services`, and every span's parent has arrived
   * (but the one root's). Each process exports in its own batches, and a process whose spans are all leaves (a worker
   * whose outcome was not the last) leaves nothing dangling while its batch is still on the way: hence `services`.
   */
  async function traceOf(jobId: string, services: string[], done: (spans: ReceivedSpan[]) => boolean): Promise<ReceivedSpan[]> {
    return waitFor(async () => {
      const ids = new Set(receiver.spans.filter((s) => s.attributes['lookup.job_id'] === jobId).map((s) => s.traceId));
      if (ids.size !== 1) return undefined;
      const spans = receiver.spans.filter((s) => ids.has(s.traceId));
      // A parent span ends (and is exported) after its children, and each process exports in its own batches: wait
      // until no span points at a parent that has not arrived yet, but the one root (checked by the caller).
      const ids2 = new Set(spans.map((s) => s.spanId));
      const dangling = spans.filter((s) => !ids2.has(s.parentSpanId)).length;
      const arrived = services.every((service) => spans.some((s) => s.service === service));
      return arrived && done(spans) && dangling <= 1 ? spans : undefined;
    }, 20_000);
  }

  /** The trace's one root, the API's POST; every span hangs off it. */
  function rootOf(trace: ReceivedSpan[], byId: Map<string, ReceivedSpan>): ReceivedSpan {
    const roots = trace.filter((s) => !byId.has(s.parentSpanId));
    expect(roots).toHaveLength(1);
    expect(roots[0]).toMatchObject({ service: 'lookup-api', kind: SpanKinds.server });
    expect(roots[0]!.attributes['http.request.method'] ?? roots[0]!.attributes['http.method']).toBe('POST');
    return roots[0]!;
  }

  /** Linked across the broker: each consumer span of `name` in `consumer` has for parent a producer span of one of `publishers`. */
  function hop(trace: ReceivedSpan[], byId: Map<string, ReceivedSpan>, name: string, publishers: string[], consumer: string): void {
    const spans = trace.filter((s) => s.kind === SpanKinds.consumer && s.name === `process ${name}` && s.service === consumer);
    expect(spans.length, `${consumer} consumed ${name}`).toBeGreaterThan(0);
    for (const s of spans) {
      const parent = byId.get(s.parentSpanId);
      expect(parent, `${name} to ${consumer}`).toMatchObject({ kind: SpanKinds.producer });
      expect(publishers, `${name} to ${consumer}`).toContain(parent!.service);
      // A retry is published to its delay queue (`<slug>.delay.<ms>ms`), which hands it back to the command queue.
      expect(parent!.name, `${name} to ${consumer}`).toMatch(parent!.service === consumer ? /^publish [a-z-]+\.delay\.\d+ms$/ : `publish ${name}`);
    }
  }

  /**
   * The job's end, announced once (job.completed) by one of `publishers`, under its "complete job" step; nothing in the
   * suite consumes it (the API's metrics and event streams learn of the end from Redis), so it is the trace's last hop.
   */
  function announced(trace: ReceivedSpan[], byId: Map<string, ReceivedSpan>, publishers: string[]): void {
    const spans = trace.filter((s) => s.kind === SpanKinds.producer && s.name === 'publish job.completed');
    expect(spans, 'job.completed published once').toHaveLength(1);
    expect(publishers).toContain(spans[0]!.service);
    expect(ancestors(spans[0]!, byId).some((s) => / complete job$/.test(s.name))).toBe(true);
    expect(trace.filter((s) => s.name === 'process job.completed')).toEqual([]);
  }

  it('follows one job, retry included, in one trace across the API and every worker (the API dispatches, the last worker announces)', async () => {
    const doc = await submitAndWait(suite, { target: RETRIED_TARGET });
    expect(doc.results.find((r) => r.serviceType === 'RDAP')).toMatchObject({ status: 'Failed', attempts: 2 });
    const jobId = doc.jobId;

    // Spans arrive in batches: wait until the last step (a worker's job.completed) and both RDAP attempts are in.
    const trace = await traceOf(
      jobId,
      ['lookup-api', ...WORKERS],
      (spans) => spans.some((s) => WORKERS.includes(s.service) && s.name === 'publish job.completed') && spans.filter((s) => s.service === 'lookup-rdap' && s.name === 'lookup RDAP').length === 2,
    );

    // Every process that handled the job took part (the saga takes no part in a job without a tenant), and every
    // span hangs off the one root: the API's POST.
    expect(new Set(trace.map((s) => s.service))).toEqual(new Set(['lookup-api', ...WORKERS]));
    const byId = new Map(trace.map((s) => [s.spanId, s]));
    const root = rootOf(trace, byId);

    // A command comes from the API; RDAP's second attempt from the RDAP worker itself (its retry). The worker whose
    // outcome completed the job announced it.
    for (const worker of WORKERS) hop(trace, byId, `lookup.${worker.slice('lookup-'.length)}`, worker === 'lookup-rdap' ? ['lookup-api', worker] : ['lookup-api'], worker);
    announced(trace, byId, WORKERS);
    expect(trace.filter((s) => s.name === 'process task.completed' || s.name === 'process job.submitted')).toEqual([]);
    for (const s of trace.filter((s) => s.kind === SpanKinds.consumer)) expect(byId.get(s.parentSpanId)?.service, s.name).toBeDefined();

    // The retry: attempt 2's delivery descends from attempt 1's lookup, through the RDAP worker's retry publish.
    const rdapLookups = trace.filter((s) => s.service === 'lookup-rdap' && s.name === 'lookup RDAP');
    const [first, second] = [1, 2].map((n) => rdapLookups.find((s) => s.attributes['lookup.attempt'] === n)!);
    expect(first).toMatchObject({ statusCode: 2, attributes: { 'lookup.outcome': 'failed' } });
    expect(ancestors(second!, byId).map((s) => s.spanId)).toContain(first!.parentSpanId);
    expect(ancestors(second!, byId).some((s) => s.service === 'lookup-rdap' && s.kind === SpanKinds.producer)).toBe(true);

    // Each lookup's outbound traffic: RDAP's HTTP requests (undici) and the DNS worker's queries.
    const rdapHttp = trace.filter((s) => s.service === 'lookup-rdap' && s.kind === SpanKinds.client && byId.get(s.parentSpanId)?.name === 'lookup RDAP');
    expect(rdapHttp.length).toBeGreaterThanOrEqual(2);
    expect(trace.some((s) => s.service === 'lookup-dns' && s.kind === SpanKinds.client && s.name.startsWith('dns resolve'))).toBe(true);
    // The instrumented libraries, hooked in ESM by the telemetry module: Fastify's request span under the HTTP
    // server span, and the Redis commands (ioredis) of the API and the workers.
    expect(trace.some((s) => s.service === 'lookup-api' && s.name === 'request' && s.parentSpanId === root.spanId)).toBe(true);
    const redisBy = (service: string) => trace.some((s) => s.service === service && s.kind === SpanKinds.client && (s.attributes['db.system.name'] ?? s.attributes['db.system']) === 'redis');
    for (const service of ['lookup-api', 'lookup-rdap']) expect(redisBy(service), `${service} Redis spans`).toBe(true);
    // The dispatch and the announcement of the job's end, each once.
    expect(trace.filter((s) => s.service === 'lookup-api' && s.name === 'api dispatch commands')).toHaveLength(1);
    expect(trace.filter((s) => WORKERS.includes(s.service) && s.name === 'worker complete job')).toHaveLength(1);

    // Log lines about the job carry its trace id, in every process that handled it.
    for (const p of suite.processes.filter((p) => p.name !== 'saga')) {
      const lines = p.lines.filter((l) => l.includes(jobId)).map((l) => JSON.parse(l) as { traceId?: string });
      expect(lines.length, p.name).toBeGreaterThan(0);
      expect(lines.some((l) => l.traceId === root.traceId), p.name).toBe(true);
    }
  });

  it("follows a tenant's job through the saga in one trace: job.submitted, its commands, the last task.completed, job.completed", async () => {
    const doc = await submitAndWait(suite, { target: '127.0.0.2', services: ['GeoIP', 'Ping'] }, TENANT_KEY);
    const jobId = doc.jobId;
    const trace = await traceOf(jobId, ['lookup-api', 'lookup-saga', 'lookup-geoip', 'lookup-ping'], (spans) => spans.some((s) => s.service === 'lookup-saga' && s.name === 'publish job.completed'));
    expect(new Set(trace.map((s) => s.service))).toEqual(new Set(['lookup-api', 'lookup-saga', 'lookup-geoip', 'lookup-ping']));
    const byId = new Map(trace.map((s) => [s.spanId, s]));
    const root = rootOf(trace, byId);
    hop(trace, byId, 'job.submitted', ['lookup-api'], 'lookup-saga');
    for (const worker of ['lookup-geoip', 'lookup-ping']) hop(trace, byId, `lookup.${worker.slice('lookup-'.length)}`, ['lookup-saga'], worker);
    // The outcome that completed the job goes to the saga (it frees the tenant's window slot), which announces it.
    hop(trace, byId, 'task.completed', ['lookup-geoip', 'lookup-ping'], 'lookup-saga');
    announced(trace, byId, ['lookup-saga']);
    for (const step of ['saga dispatch commands', 'saga record outcome', 'saga complete job']) {
      expect(trace.some((s) => s.service === 'lookup-saga' && s.name === step), step).toBe(true);
    }
    expect(trace.some((s) => s.service === 'lookup-saga' && s.kind === SpanKinds.client && (s.attributes['db.system.name'] ?? s.attributes['db.system']) === 'redis')).toBe(true);
    const saga = suite.processes.find((p) => p.name === 'saga')!;
    const lines = saga.lines.filter((l) => l.includes(jobId)).map((l) => JSON.parse(l) as { traceId?: string });
    expect(lines.some((l) => l.traceId === root.traceId)).toBe(true);
  });

  it('links each message carried in an envelope to its own publish (a batch: commands share envelopes)', async () => {
    const n = 8;
    const res = await fetch(`${suite.apiUrl}/api/lookup/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': PLAIN_KEY },
      body: JSON.stringify({ items: Array.from({ length: n }, (_, i) => ({ target: `127.0.1.${i + 2}` })), services: ['GeoIP'] }),
    });
    expect(res.status).toBe(202);
    const jobIds = ((await res.json()) as { jobs: { jobId: string }[] }).jobs.map((j) => j.jobId);
    await waitFor(async () => {
      const docs = await Promise.all(jobIds.map(async (id) => (await (await fetch(`${suite.apiUrl}/api/lookup/${id}`, { headers: { 'x-api-key': PLAIN_KEY } })).json()) as JobDocument));
      return docs.every((d) => d.status === 'Completed') ? true : undefined;
    }, 30_000);
    const hops: [string, string, string][] = [['lookup.geoip', 'lookup-api', 'lookup-geoip']];
    // Every job's delivery span on each hop, whose parent is the publish span of that same job (not of a sibling).
    const linked = await waitFor(async () => {
      const byId = new Map(receiver.spans.map((s) => [s.spanId, s]));
      const found = jobIds.flatMap((jobId) =>
        hops.map(([key, from, to]) => {
          const delivery = receiver.spans.find((s) => s.kind === SpanKinds.consumer && s.service === to && s.name === `process ${key}` && s.attributes['lookup.job_id'] === jobId);
          const parent = delivery && byId.get(delivery.parentSpanId);
          return parent ? { jobId, key, from, parent, delivery: delivery! } : undefined;
        }),
      );
      return found.every((f) => f !== undefined) ? found : undefined;
    }, 20_000);
    for (const { jobId, key, from, parent, delivery } of linked!) {
      expect(parent, `${key} of ${jobId}`).toMatchObject({ kind: SpanKinds.producer, service: from, name: `publish ${key}` });
      expect(parent.attributes['lookup.job_id'], `${key} of ${jobId}`).toBe(jobId);
      expect(delivery.traceId).toBe(parent.traceId);
    }
  });
});

describe('traces without OTEL_EXPORTER_OTLP_ENDPOINT', () => {
  it('starts no SDK and exports nothing, though the SDK would have somewhere to send', async () => {
    const ns = newNamespace('notrace');
    const receiver = await startOtlpReceiver();
    // The per-signal endpoint alone does not turn tracing on (only OTEL_EXPORTER_OTLP_ENDPOINT does); a started
    // SDK would export there.
    const env = { ...suiteEnv(), OTEL_EXPORTER_OTLP_ENDPOINT: '', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces` };
    const suite = await startSuite({ namespace: ns, env, services: ['api', 'saga', 'geoip'] });
    try {
      const doc = await submitAndWait(suite, { target: '127.0.0.2', services: ['GeoIP'] });
      expect(doc.results).toHaveLength(1);
    } finally {
      // Stopping flushes what a tracing process has buffered: after it, anything exported has arrived.
      await suite.stop();
      await receiver.close();
      await cleanupNamespace(ns);
    }
    expect(receiver.requests).toBe(0);
    for (const p of suite.processes) {
      const lines = p.lines.map((l) => JSON.parse(l) as { msg?: string; traces?: string; traceId?: string });
      expect(lines.find((l) => l.msg === 'starting'), p.name).toMatchObject({ traces: 'off' });
      expect(lines.filter((l) => l.traceId !== undefined), p.name).toEqual([]);
    }
  });
});

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
  OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
  OTEL_BSP_SCHEDULE_DELAY: '100',
});

beforeAll(async () => {
  [rdap, dns] = await Promise.all([startRdapFixture({}), startDnsFixture({ records: { a: { [RETRIED_TARGET]: ['127.0.0.2'] } } })]);
});

afterAll(async () => {
  await Promise.all([rdap?.close(), dns?.close()]);
});

async function submitAndWait(suite: Suite, body: unknown): Promise<JobDocument> {
  const res = await fetch(`${suite.apiUrl}/api/lookup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status).toBe(202);
  const { statusUrl } = (await res.json()) as { statusUrl: string };
  return waitFor(async () => {
    const doc = (await (await fetch(`${suite.apiUrl}${statusUrl}`)).json()) as JobDocument;
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

  it('follows one job, retry included, in one trace across the API, the saga and every worker', async () => {
    const doc = await submitAndWait(suite, { target: RETRIED_TARGET });
    expect(doc.results.find((r) => r.serviceType === 'RDAP')).toMatchObject({ status: 'Failed', attempts: 2 });
    const jobId = doc.jobId;

    // Spans arrive in batches: wait until the last hop (the API's job.completed) and both RDAP attempts are in.
    const trace = await waitFor(async () => {
      const ids = new Set(receiver.spans.filter((s) => s.attributes['lookup.job_id'] === jobId).map((s) => s.traceId));
      if (ids.size !== 1) return undefined;
      const spans = receiver.spans.filter((s) => ids.has(s.traceId));
      const done = spans.some((s) => s.service === 'lookup-api' && s.name === 'process job.completed');
      const attempts = spans.filter((s) => s.service === 'lookup-rdap' && s.name === 'lookup RDAP').length;
      // A parent span ends (and is exported) after its children, and each process exports in its own batches: wait
      // until no span points at a parent that has not arrived yet, but the one root (checked below).
      const ids2 = new Set(spans.map((s) => s.spanId));
      const dangling = spans.filter((s) => !ids2.has(s.parentSpanId)).length;
      return done && attempts === 2 && dangling <= 1 ? spans : undefined;
    }, 20_000);

    // Every process took part, and every span hangs off the one root: the API's POST.
    expect(new Set(trace.map((s) => s.service))).toEqual(new Set(['lookup-api', 'lookup-saga', ...WORKERS]));
    const byId = new Map(trace.map((s) => [s.spanId, s]));
    const roots = trace.filter((s) => !byId.has(s.parentSpanId));
    expect(roots).toHaveLength(1);
    expect(roots[0]).toMatchObject({ service: 'lookup-api', kind: SpanKinds.server });
    expect(roots[0]!.attributes['http.request.method'] ?? roots[0]!.attributes['http.method']).toBe('POST');

    // Linked across the broker: each consumer span's parent is the producer span of the process that published.
    const consumers = trace.filter((s) => s.kind === SpanKinds.consumer);
    const hop = (name: string, publishers: string[], consumer: string) => {
      const spans = consumers.filter((s) => s.name === `process ${name}` && s.service === consumer);
      expect(spans.length, `${consumer} consumed ${name}`).toBeGreaterThan(0);
      for (const s of spans) {
        const parent = byId.get(s.parentSpanId);
        expect(parent, `${name} to ${consumer}`).toMatchObject({ kind: SpanKinds.producer });
        expect(publishers, `${name} to ${consumer}`).toContain(parent!.service);
        // A retry is published to its delay queue (`<slug>.delay.<ms>ms`), which hands it back to the command queue.
        expect(parent!.name, `${name} to ${consumer}`).toMatch(parent!.service === consumer ? /^publish [a-z-]+\.delay\.\d+ms$/ : `publish ${name}`);
      }
    };
    hop('job.submitted', ['lookup-api'], 'lookup-saga');
    // A command comes from the saga; RDAP's second attempt from the RDAP worker itself (its retry).
    for (const worker of WORKERS) hop(`lookup.${worker.slice('lookup-'.length)}`, worker === 'lookup-rdap' ? ['lookup-saga', worker] : ['lookup-saga'], worker);
    hop('task.completed', WORKERS, 'lookup-saga');
    hop('job.completed', ['lookup-saga'], 'lookup-api');
    for (const s of consumers) expect(byId.get(s.parentSpanId)?.service, s.name).toBeDefined();

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
    // server span, and the Redis commands (ioredis) of the saga and the workers.
    expect(trace.some((s) => s.service === 'lookup-api' && s.name === 'request' && s.parentSpanId === roots[0]!.spanId)).toBe(true);
    const redisBy = (service: string) => trace.some((s) => s.service === service && s.kind === SpanKinds.client && (s.attributes['db.system.name'] ?? s.attributes['db.system']) === 'redis');
    for (const service of ['lookup-api', 'lookup-saga', 'lookup-rdap']) expect(redisBy(service), `${service} Redis spans`).toBe(true);
    // The saga's steps.
    for (const step of ['saga dispatch commands', 'saga record outcome', 'saga complete job']) {
      expect(trace.some((s) => s.service === 'lookup-saga' && s.name === step), step).toBe(true);
    }

    // Log lines about the job carry its trace id, in every process.
    const traceId = roots[0]!.traceId;
    for (const p of suite.processes) {
      const lines = p.lines.filter((l) => l.includes(jobId)).map((l) => JSON.parse(l) as { traceId?: string });
      expect(lines.length, p.name).toBeGreaterThan(0);
      expect(lines.some((l) => l.traceId === traceId), p.name).toBe(true);
    }
  });

  it('links each message carried in an envelope to its own publish (a batch: job.submitted, commands and task.completed share envelopes)', async () => {
    const n = 8;
    const res = await fetch(`${suite.apiUrl}/api/lookup/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ items: Array.from({ length: n }, (_, i) => ({ target: `127.0.1.${i + 2}` })), services: ['GeoIP'] }),
    });
    expect(res.status).toBe(202);
    const jobIds = ((await res.json()) as { jobs: { jobId: string }[] }).jobs.map((j) => j.jobId);
    await waitFor(async () => {
      const docs = await Promise.all(jobIds.map(async (id) => (await (await fetch(`${suite.apiUrl}/api/lookup/${id}`)).json()) as JobDocument));
      return docs.every((d) => d.status === 'Completed') ? true : undefined;
    }, 30_000);
    const hops: [string, string, string][] = [
      ['job.submitted', 'lookup-api', 'lookup-saga'],
      ['lookup.geoip', 'lookup-saga', 'lookup-geoip'],
      ['task.completed', 'lookup-geoip', 'lookup-saga'],
    ];
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

// Prometheus metrics, end to end: real API, saga and worker processes (each listener on an ephemeral METRICS_PORT),
// real RabbitMQ and Redis. A known set of jobs (successes, a lookup that fails after a retry, a cancellation, a job
// finished by its deadline), a rate-limited submission and a dead letter; then every process's /metrics is scraped,
// parsed, and each counter and histogram count must equal what was done.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { topology } from '@lookup/messaging';
import { keys as storeKeys } from '@lookup/store';
import { parseExposition, sampleValue, type Sample } from '@lookup/metrics';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { freePort, startService, stopService, waitFor, type ServiceProcess } from './support/processes.ts';
import { rawAmqp } from './support/amqp.ts';
import { rawRedis } from './support/redis.ts';
import { resourceEnv, sqlUntilOk, sql, startApi, startWorker, stopAll, type Api, type Worker } from './support/resources.ts';

/** The port a process's metrics listener took, from its `metrics listening` log line. */
function metricsPort(p: ServiceProcess): number {
  for (const line of p.lines) {
    if (!line.includes('"metrics listening"')) continue;
    return (JSON.parse(line) as { port: number }).port;
  }
  throw new Error(`${p.name} printed no "metrics listening" line:\n${p.lines.slice(-10).join('\n')}`);
}

async function scrape(url: string): Promise<Sample[]> {
  const res = await fetch(url);
  expect(res.status, url).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

describe('metrics of every process after a known set of jobs', () => {
  const ns = newNamespace('metrics');
  const t = topology(ns);
  const procs: Record<string, ServiceProcess> = {};
  let apiUrl: string;
  let redis: Redis;

  beforeAll(async () => {
    redis = rawRedis(); // a Cluster client when REDIS_URL is redis+cluster://
    const port = await freePort();
    apiUrl = `http://127.0.0.1:${port}`;
    const env = {
      NAMESPACE: ns,
      API_HOST: '127.0.0.1',
      API_PORT: String(port),
      METRICS_PORT: '0',
      ALLOW_PRIVATE_TARGETS: 'true',
      // RDAP at a loopback port where nothing listens: every RDAP lookup fails transiently (RDAP_UNREACHABLE), is
      // retried once (RETRY_MAX_ATTEMPTS 2) and then recorded Failed.
      RDAP_BASE_URL: `http://127.0.0.1:${await freePort()}`,
      RETRY_MAX_ATTEMPTS: '2',
      RETRY_BASE_DELAY_MS: '20',
      RETRY_MAX_DELAY_MS: '50',
      DEADLINE_SWEEP_MS: '100',
      JOB_DEADLINE_MS: '120000',
      RATE_LIMIT_SUBMIT_PER_MIN: '4',
      RATE_LIMIT_API_PER_MIN: '100000',
    };
    // No Ping worker: Ping commands wait, so a Ping job can be cancelled, or finished by its deadline, for certain.
    const started = await Promise.all(['api', 'saga', 'geoip', 'rdap'].map((name) => startService(name, env)));
    for (const p of started) procs[p.name] = p;
    await waitFor(async () => ((await fetch(`${apiUrl}/health/ready`).catch(() => undefined))?.status === 200 ? true : undefined), 30_000);
  });

  afterAll(async () => {
    await Promise.all(Object.values(procs).map((p) => stopService(p)));
    redis?.disconnect();
    await cleanupNamespace(ns);
  });

  async function submit(body: unknown): Promise<Response> {
    return fetch(`${apiUrl}/api/lookup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  }
  async function accepted(body: unknown): Promise<string> {
    const res = await submit(body);
    expect(res.status).toBe(202);
    return ((await res.json()) as { jobId: string }).jobId;
  }
  async function finished(jobId: string): Promise<{ status: string; results: { serviceType: string; status: string; attempts: number }[] }> {
    return waitFor(async () => {
      const doc = (await (await fetch(`${apiUrl}/api/lookup/${jobId}`)).json()) as { status: string; results: { serviceType: string; status: string; attempts: number }[] };
      return doc.status === 'Completed' || doc.status === 'Cancelled' ? doc : undefined;
    }, 60_000);
  }

  it('counts exactly what was done, on the process where it happened', async () => {
    // 1. GeoIP only: succeeds.
    const a = await accepted({ target: '8.8.8.8', services: ['GeoIP'] });
    // 2. GeoIP and RDAP: GeoIP succeeds, RDAP fails after two attempts (one retry).
    const b = await accepted({ target: '8.8.4.4', services: ['GeoIP', 'RDAP'] });
    // 3. Ping only, cancelled while its command waits.
    const c = await accepted({ target: '127.0.0.2', services: ['Ping'] });
    // 4. Ping only, finished by its deadline: the test moves the deadline into the past, the saga's sweeper does the rest.
    const d = await accepted({ target: '127.0.0.3', services: ['Ping'] });
    // 5. Over RATE_LIMIT_SUBMIT_PER_MIN (4): refused with 429, never a job.
    expect((await submit({ target: '8.8.8.8', services: ['GeoIP'] })).status).toBe(429);

    expect((await finished(a)).results).toEqual([expect.objectContaining({ serviceType: 'GeoIP', status: 'Succeeded' })]);
    const docB = await finished(b);
    expect(docB.status).toBe('Completed');
    expect(docB.results).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ serviceType: 'GeoIP', status: 'Succeeded' }),
        expect.objectContaining({ serviceType: 'RDAP', status: 'Failed', attempts: 2 }),
      ]),
    );
    expect((await fetch(`${apiUrl}/api/lookup/${c}`, { method: 'DELETE' })).status).toBe(202);
    expect((await finished(c)).status).toBe('Cancelled');
    await redis.hset(storeKeys(ns).job(d), 'deadlineAt', '1');
    await redis.zadd(storeKeys(ns).deadlines(d), 1, d);
    expect((await finished(d)).results).toEqual([expect.objectContaining({ serviceType: 'Ping', status: 'TimedOut' })]);

    // 6. A poison command on the GeoIP queue: dead-lettered by the GeoIP worker.
    const amqp = await rawAmqp();
    try {
      await amqp.publish(t.exchanges.commands, 'lookup.geoip', '{not json', { messageId: randomUUID() });
      expect(await amqp.drain(t.queues.deadLetter, 1, 20_000)).toHaveLength(1);
    } finally {
      await amqp.close();
    }

    // The API: its own counters, and its view of the four finished jobs' outcomes (each counted once, by the one
    // replica here). Both job.completed (saga's and the cancel's) may arrive a moment after the job reads finished.
    const apiExpected: [string, Record<string, string>, number][] = [
      ['lookup_jobs_submitted_total', {}, 4],
      ['lookup_jobs_completed_total', { status: 'Cancelled' }, 1],
      ['lookup_rate_limit_rejections_total', { tier: 'submit' }, 1],
      ['lookup_api_service_outcomes_total', { service: 'GeoIP', outcome: 'succeeded' }, 2],
      ['lookup_api_service_outcomes_total', { service: 'RDAP', outcome: 'failed' }, 1],
      ['lookup_api_service_outcomes_total', { service: 'Ping', outcome: 'cancelled' }, 1],
      ['lookup_api_service_outcomes_total', { service: 'Ping', outcome: 'timed_out' }, 1],
      ['lookup_api_service_outcomes_total', {}, 5],
      // Durations come with the outcomes a worker recorded; cancelled and timed-out ones have none.
      ['lookup_api_service_duration_seconds_count', { service: 'GeoIP' }, 2],
      ['lookup_api_service_duration_seconds_count', { service: 'RDAP' }, 1],
      ['lookup_api_service_duration_seconds_count', { service: 'Ping' }, 0],
    ];
    const api = await waitFor(async () => {
      const s = await scrape(`${apiUrl}/metrics`);
      return sampleValue(s, 'lookup_api_service_outcomes_total') >= 5 ? s : undefined;
    }, 20_000);
    for (const [name, labels, value] of apiExpected) expect(sampleValue(api, name, labels), `api ${name} ${JSON.stringify(labels)}`).toBe(value);
    expect(api.some((s) => s.name === 'process_cpu_user_seconds_total')).toBe(true);
    expect(api.some((s) => s.name.startsWith('nodejs_'))).toBe(true);

    // A job's end is counted where it was announced: a completed job (no tenant) by the worker whose outcome completed
    // it (checked below), a timed-out one by the saga's deadline sweeper, a cancelled one by the API.
    const saga = await scrape(`http://127.0.0.1:${metricsPort(procs.saga!)}/metrics`);
    expect(sampleValue(saga, 'lookup_jobs_completed_total', { status: 'Completed' })).toBe(0);
    expect(sampleValue(saga, 'lookup_jobs_completed_total', { status: 'TimedOut' })).toBe(1);
    expect(sampleValue(saga, 'lookup_jobs_completed_total', { status: 'Cancelled' })).toBe(0); // the API's
    expect(sampleValue(saga, 'lookup_job_duration_seconds_count')).toBe(1);
    expect(sampleValue(saga, 'lookup_job_duration_seconds_bucket', { le: '+Inf' })).toBe(1);
    expect(sampleValue(saga, 'lookup_jobs_submitted_total')).toBe(0);
    expect(saga.some((s) => s.name === 'process_resident_memory_bytes')).toBe(true);

    const geoip = await waitFor(async () => {
      const s = await scrape(`http://127.0.0.1:${metricsPort(procs.geoip!)}/metrics`);
      return sampleValue(s, 'lookup_dead_letters_total') >= 1 ? s : undefined;
    });
    expect(sampleValue(geoip, 'lookup_tasks_total', { service: 'GeoIP', outcome: 'succeeded' })).toBe(2);
    expect(sampleValue(geoip, 'lookup_tasks_total', { service: 'GeoIP', outcome: 'failed' })).toBe(0);
    expect(sampleValue(geoip, 'lookup_task_attempts_total', { service: 'GeoIP' })).toBe(2);
    expect(sampleValue(geoip, 'lookup_task_retries_total', { service: 'GeoIP' })).toBe(0);
    expect(sampleValue(geoip, 'lookup_task_duration_seconds_count', { service: 'GeoIP' })).toBe(2);
    expect(sampleValue(geoip, 'lookup_dead_letters_total', { queue: 'lookup.geoip', reason: 'invalid_json' })).toBe(1);
    expect(sampleValue(geoip, 'lookup_dead_letters_total')).toBe(1);

    const rdap = await scrape(`http://127.0.0.1:${metricsPort(procs.rdap!)}/metrics`);
    expect(sampleValue(rdap, 'lookup_tasks_total', { service: 'RDAP', outcome: 'failed' })).toBe(1);
    expect(sampleValue(rdap, 'lookup_tasks_total', { service: 'RDAP', outcome: 'succeeded' })).toBe(0);
    expect(sampleValue(rdap, 'lookup_task_attempts_total', { service: 'RDAP' })).toBe(2);
    expect(sampleValue(rdap, 'lookup_task_retries_total', { service: 'RDAP' })).toBe(1);
    expect(sampleValue(rdap, 'lookup_task_duration_seconds_count', { service: 'RDAP' })).toBe(1);
    expect(sampleValue(rdap, 'lookup_dead_letters_total')).toBe(0);

    // The two completed jobs: the GeoIP-only one ended by the GeoIP worker, the other by whichever worker recorded its
    // last outcome (RDAP, after its retry, in practice); each counted and timed once.
    const ended = (name: string) => sampleValue(geoip, name, { status: 'Completed' }) + sampleValue(rdap, name, { status: 'Completed' });
    expect(sampleValue(geoip, 'lookup_jobs_completed_total', { status: 'Completed' })).toBeGreaterThanOrEqual(1);
    expect(ended('lookup_jobs_completed_total')).toBe(2);
    expect(sampleValue(geoip, 'lookup_job_duration_seconds_count') + sampleValue(rdap, 'lookup_job_duration_seconds_count')).toBe(2);
    expect(sampleValue(geoip, 'lookup_jobs_completed_total', { status: 'TimedOut' }) + sampleValue(rdap, 'lookup_jobs_completed_total', { status: 'TimedOut' })).toBe(0);

    // No label anywhere carries a job id or a target.
    for (const s of [...api, ...saga, ...geoip, ...rdap]) {
      const values = Object.values(s.labels).join(' ');
      for (const forbidden of [a, b, c, d, '8.8.8.8', '8.8.4.4', '127.0.0.2', '127.0.0.3']) expect(values, s.name).not.toContain(forbidden);
    }
  });

  it('serves /health/live and /health/ready (200 while RabbitMQ and Redis answer) on every listener, 404 elsewhere', async () => {
    for (const name of ['saga', 'geoip', 'rdap']) {
      const base = `http://127.0.0.1:${metricsPort(procs[name]!)}`;
      expect((await fetch(`${base}/health/live`)).status, name).toBe(200);
      const ready = await fetch(`${base}/health/ready`);
      expect(ready.status, name).toBe(200);
      expect(await ready.json()).toEqual({ status: 'ready', checks: { rabbitmq: 'up', redis: 'up' } });
      expect((await fetch(`${base}/api/lookup`)).status, name).toBe(404);
    }
  });
});

describe('metrics of the resource worker', () => {
  const ns = newNamespace('metrics-res');
  const re = resourceEnv(ns, { METRICS_PORT: '0' });
  let api: Api;
  let worker: Worker;

  beforeAll(async () => {
    api = await startApi(re.env);
    worker = await startWorker(re.env, 'm');
  });

  afterAll(async () => {
    await stopAll([worker, api].filter(Boolean));
    await cleanupNamespace(ns);
    re.cleanup();
  });

  it('counts the requests it answered by outcome and exposes the keys it owns', async () => {
    expect((await sqlUntilOk(api.url, 'metrics-one', 'SELECT 1 AS one')).status).toBe(200);
    expect((await sql(api.url, 'metrics-one', 'SELECT nonsense FROM nowhere')).status).toBe(400);
    expect((await sqlUntilOk(api.url, 'metrics-two', 'SELECT 2 AS two')).status).toBe(200);
    const s = await scrape(`http://127.0.0.1:${metricsPort(worker.process)}/metrics`);
    expect(sampleValue(s, 'lookup_resource_requests_total', { outcome: 'succeeded' })).toBe(2);
    expect(sampleValue(s, 'lookup_resource_requests_total', { outcome: 'failed' })).toBe(1);
    expect(sampleValue(s, 'lookup_resource_owned_keys')).toBe(2);
    for (const sample of s) expect(Object.values(sample.labels).join(' '), sample.name).not.toContain('metrics-one');
    // The API places keys: no failover while the one worker lives.
    expect(sampleValue(await scrape(`${api.url}/metrics`), 'lookup_resource_failovers_total')).toBe(0);
  });
});

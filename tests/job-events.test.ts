import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { rawRedis } from './support/redis.ts';
import { ServiceType, type JobDocument } from '@lookup/contracts';
import { createJobStore } from '@lookup/store';

import { startDnsFixture, startRdapFixture } from './fixtures/index.ts';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { freePort, startService, startSuite, stopService, waitFor, type ServiceProcess, type Suite } from './support/processes.ts';

// The event streams against the real suite: API A (with the saga and the GeoIP, RDAP and ReverseDNS workers) and
// API B, a second replica on the same namespace that accepts nothing itself. No Ping worker runs, so a job that asks
// for Ping stays open (until it is cancelled): the live part of a stream can be watched without racing the workers.
const ns = newNamespace('events');
let suite: Suite;
let replica: ServiceProcess;
let replicaUrl: string;
let rdap: Awaited<ReturnType<typeof startRdapFixture>>;
let dns: Awaited<ReturnType<typeof startDnsFixture>>;
const redis = rawRedis();

beforeAll(async () => {
  [rdap, dns] = await Promise.all([startRdapFixture({}), startDnsFixture({})]);
  const env = {
    RDAP_BASE_URL: rdap.url,
    DNS_SERVERS: dns.address,
    ALLOW_PRIVATE_TARGETS: 'true',
    RATE_LIMIT_SUBMIT_PER_MIN: '1000',
    RATE_LIMIT_API_PER_MIN: '10000',
    RATE_LIMIT_GLOBAL_PER_MIN: '100000',
  };
  // A's heartbeat (and the re-read that goes with it) is the longest allowed, 19 s: within the 5 s waits below, its
  // streams move on wake-ups only.
  suite = await startSuite({ namespace: ns, env: { ...env, EVENTS_HEARTBEAT_MS: '19000' }, services: ['api', 'saga', 'geoip', 'rdap', 'reverse-dns'] });
  const port = await freePort();
  replica = await startService('api', { ...env, EVENTS_HEARTBEAT_MS: '300', NAMESPACE: ns, API_HOST: '127.0.0.1', API_PORT: String(port) });
  replicaUrl = `http://127.0.0.1:${port}`;
  await waitFor(async () => ((await fetch(`${replicaUrl}/health/ready`).catch(() => undefined))?.status === 200 ? true : undefined), 30_000);
});

afterAll(async () => {
  redis.disconnect();
  await Promise.all([suite?.stop(), replica && stopService(replica)]);
  await Promise.all([rdap?.close(), dns?.close()]);
  await cleanupNamespace(ns);
});

interface SseEvent {
  event: string;
  id: string;
  data: any;
}

/** A server-sent event client that keeps everything it read: events, comments, and whether the server ended. */
function open(url: string, lastEventId?: string) {
  const controller = new AbortController();
  const events: SseEvent[] = [];
  const comments: string[] = [];
  let ended = false;
  const response = fetch(url, { signal: controller.signal, headers: lastEventId ? { 'last-event-id': lastEventId } : {} });
  const done = (async () => {
    const res = await response;
    if (res.status !== 200 || !res.body) return;
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          if (block.startsWith(':')) {
            comments.push(block);
            continue;
          }
          const fields = Object.fromEntries(block.split('\n').map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]));
          events.push({ event: fields.event!, id: fields.id!, data: JSON.parse(fields.data!) });
        }
      }
      ended = true;
    } catch {
      // aborted
    }
  })();
  return {
    response,
    events,
    comments,
    done,
    get ended() {
      return ended;
    },
    close: () => controller.abort(),
    /** Waits until `n` events arrived. */
    until: (n: number) => waitFor(async () => (events.length >= n ? events.slice() : undefined), 20_000),
  };
}

async function post(apiUrl: string, body: unknown): Promise<string> {
  const res = await fetch(`${apiUrl}/api/lookup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status).toBe(202);
  return ((await res.json()) as { jobId: string }).jobId;
}

const compareIds = (a: string, b: string) => {
  const [am, as] = a.split('-').map(BigInt);
  const [bm, bs] = b.split('-').map(BigInt);
  return am! !== bm! ? (am! < bm! ? -1 : 1) : as! === bs! ? 0 : as! < bs! ? -1 : 1;
};

describe('job event stream (issue 13)', () => {
  it("sends a job's events in order, one result per service with its result, then completed, ids increasing", async () => {
    const jobId = await post(suite.apiUrl, { target: '127.0.0.2', services: ['geoip', 'rdap', 'reversedns'] });
    const stream = open(`${suite.apiUrl}/api/lookup/${jobId}/events`);
    await stream.done;
    expect(stream.ended).toBe(true);
    const names = stream.events.map((e) => e.event);
    // `status` comes first when the job was still open at connect.
    const body = names[0] === 'status' ? names.slice(1) : names;
    expect(body).toEqual(['result', 'result', 'result', 'completed']);
    const results = stream.events.filter((e) => e.event === 'result');
    expect(results.map((e) => e.data.serviceType).sort()).toEqual(['GeoIP', 'RDAP', 'ReverseDNS']);
    const final = stream.events.at(-1)!.data as JobDocument;
    expect(final).toMatchObject({ jobId, status: 'Completed', completionPercentage: 100 });
    // Each result event is the service's entry of the final document, with the job id.
    for (const r of results) expect(r.data).toEqual({ jobId, ...final.results.find((x) => x.serviceType === r.data.serviceType) });
    expect(results.find((r) => r.data.serviceType === 'GeoIP')!.data).toMatchObject({ status: 'Succeeded', data: expect.any(Object) });
    const ids = stream.events.filter((e) => e.event !== 'status').map((e) => e.id);
    expect(ids.every((id) => /^\d+-\d+$/.test(id))).toBe(true);
    expect([...ids].sort(compareIds)).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);

    // Resuming after any event gives exactly the events after it; after the last one, 204 (EventSource stops).
    const all = stream.events.filter((e) => e.event !== 'status');
    for (let i = 0; i < all.length - 1; i++) {
      const again = open(`${replicaUrl}/api/lookup/${jobId}/events`, all[i]!.id);
      await again.done;
      expect(again.events.map((e) => [e.event, e.id])).toEqual(all.slice(i + 1).map((e) => [e.event, e.id]));
    }
    expect((await fetch(`${suite.apiUrl}/api/lookup/${jobId}/events`, { headers: { 'last-event-id': all.at(-1)!.id } })).status).toBe(204);
    // A fresh connect to the finished job replays every event (no status: the job is over).
    const fresh = open(`${replicaUrl}/api/lookup/${jobId}/events`);
    await fresh.done;
    expect(fresh.events.map((e) => e.id)).toEqual(ids);
    expect((await fetch(`${suite.apiUrl}/api/lookup/${jobId}/events`, { headers: { 'last-event-id': 'nope' } })).status).toBe(400);
  });

  it('a second replica streams, live, a job the first accepted; a reconnect resumes without loss or repeats; heartbeats', async () => {
    // Ping has no worker here: the job stays open with GeoIP recorded, until it is cancelled.
    const jobId = await post(suite.apiUrl, { target: '127.0.0.2', services: ['geoip', 'ping'] });
    const first = open(`${replicaUrl}/api/lookup/${jobId}/events`);
    const got = await waitFor(async () => (first.events.some((e) => e.event === 'result') ? first.events.slice() : undefined));
    expect(got.map((e) => e.event)).toEqual(got[0]!.event === 'status' ? ['status', 'result'] : ['result']);
    const geoip = got.find((e) => e.event === 'result')!;
    expect(geoip.data).toMatchObject({ jobId, serviceType: 'GeoIP', status: 'Succeeded' });
    // Waiting with nothing to say: `: ping` comments (EVENTS_HEARTBEAT_MS=300 here).
    await waitFor(async () => (first.comments.filter((c) => c === ': ping').length >= 2 ? true : undefined), 10_000);
    first.close();

    // The job changes while no one listens; the reconnect (to the other replica) gets what it missed, and only that.
    const cancel = await fetch(`${suite.apiUrl}/api/lookup/${jobId}`, { method: 'DELETE' });
    expect(cancel.status).toBeLessThan(300);
    const resumed = open(`${suite.apiUrl}/api/lookup/${jobId}/events`, geoip.id);
    await resumed.done;
    expect(resumed.events.map((e) => [e.event, e.data.serviceType ?? e.data.status])).toEqual([
      ['result', 'Ping'],
      ['cancelled', 'Cancelled'],
    ]);
    expect(resumed.events[0]!.data).toMatchObject({ jobId, status: 'Cancelled' });
    expect(compareIds(resumed.events[0]!.id, geoip.id)).toBe(1);
  });

  it('wakes a stream through Redis as the outcome is recorded, with no message from the broker', async () => {
    const jobId = await post(suite.apiUrl, { target: '127.0.0.2', services: ['geoip', 'ping'] });
    const live = open(`${suite.apiUrl}/api/lookup/${jobId}/events`);
    await waitFor(async () => (live.events.some((e) => e.event === 'result') ? true : undefined), 5_000);
    // Recorded straight in the store, as the saga would, but with no job.completed published: only the store's
    // notification can wake A's stream within 5 s (its heartbeat re-read is 19 s away).
    const jobs = createJobStore({ redis, namespace: ns, ttlSeconds: 300 });
    const at = new Date().toISOString();
    const recorded = await jobs.recordOutcome(jobId, ServiceType.Ping, {
      status: 'Failed', success: false, errorMessage: 'recorded by the test', errorCode: null, completedAt: at, durationMs: 1, attempts: 1, location: null,
    }, at);
    expect(recorded).toMatchObject({ disposition: 'recorded', status: 'Completed' });
    await waitFor(async () => (live.ended ? true : undefined), 5_000);
    expect(live.ended).toBe(true);
    expect(live.events.filter((e) => e.event !== 'status').map((e) => `${e.event}:${e.data.serviceType ?? e.data.status}`)).toEqual([
      'result:GeoIP',
      'result:Ping',
      'completed:Completed',
    ]);
    expect(live.events.at(-2)!.data).toMatchObject({ jobId, status: 'Failed', errorMessage: 'recorded by the test' });
  });

  it('follows many jobs on one stream: each event names its job, composite ids resume, the stream ends with the last job', async () => {
    const done = await post(suite.apiUrl, { target: '127.0.0.2', services: ['geoip'] });
    const open1 = await post(suite.apiUrl, { target: '127.0.0.2', services: ['geoip', 'ping'] });
    await waitFor(async () => {
      const doc = (await (await fetch(`${suite.apiUrl}/api/lookup/${done}`)).json()) as JobDocument;
      return doc.status === 'Completed' ? true : undefined;
    });
    const url = `${replicaUrl}/api/lookup/events?jobs=${done},${open1}`;
    const many = open(url);
    // The finished job's result and end, and the open job's GeoIP result (its status first).
    await waitFor(async () => (many.events.filter((e) => e.event === 'result').length >= 2 && many.events.some((e) => e.event === 'completed') ? true : undefined));
    expect(many.ended).toBe(false);
    const byJob = (id: string) => many.events.filter((e) => e.data.jobId === id).map((e) => e.event);
    expect(byJob(done)).toEqual(['result', 'completed']);
    expect(byJob(open1)).toEqual(['status', 'result']);
    for (const e of many.events) expect(e.id.split(',')).toHaveLength(2);
    const mark = many.events.at(-1)!.id;
    many.close();

    await fetch(`${suite.apiUrl}/api/lookup/${open1}`, { method: 'DELETE' });
    const resumed = open(url.replace(replicaUrl, suite.apiUrl), mark);
    await resumed.done;
    expect(resumed.ended).toBe(true);
    expect(resumed.events.map((e) => [e.data.jobId, e.event, e.data.serviceType ?? null])).toEqual([
      [open1, 'result', 'Ping'],
      [open1, 'cancelled', null],
    ]);
    expect((await fetch(url, { headers: { 'last-event-id': resumed.events.at(-1)!.id } })).status).toBe(204);

    // Bounded and checked.
    const tooMany = Array.from({ length: 101 }, () => crypto.randomUUID()).join(',');
    expect((await fetch(`${suite.apiUrl}/api/lookup/events?jobs=${tooMany}`)).status).toBe(400);
    expect((await fetch(`${suite.apiUrl}/api/lookup/events?jobs=${done},${done}`)).status).toBe(400);
    expect((await fetch(`${suite.apiUrl}/api/lookup/events?jobs=${done},${crypto.randomUUID()}`)).status).toBe(404);
    expect((await fetch(url, { headers: { 'last-event-id': '1-0' } })).status).toBe(400);
  });
});

import { describe, expect, it } from 'vitest';
import type { Config } from '@lookup/config';
import type { JobDocument } from '@lookup/contracts';
import type { JobEvent } from '@lookup/store';
import { buildApp } from '../app.ts';
import { createJobEventHub } from '../job-events.ts';
import { harness, apps } from '../testing/app-harness.ts';

describe('GET /api/lookup/:jobId/events (server-sent events)', () => {
  const JOB = '3f1c2a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b';
  const doc = (status: JobDocument['status']): JobDocument => ({
    jobId: JOB, target: '8.8.8.8', targetType: 'IPAddress', status, createdAt: new Date().toISOString(),
    completedAt: status === 'Completed' ? new Date().toISOString() : null, completionPercentage: status === 'Completed' ? 100 : 0,
    requestedServices: ['GeoIP'], results: [],
  });
  const parse = (payload: string) =>
    payload.split('\n\n').filter((b) => b.startsWith('event:')).map((b) => {
      const [ev, data] = b.split('\n');
      return { event: ev!.slice(7), data: JSON.parse(data!.slice(6)) as JobDocument };
    });

  async function streamHarness(overrides: Partial<Config> = {}) {
    // Each job's event stream, as the store would keep it (read after an id, exclusive).
    const streams = new Map<string, JobEvent[]>();
    const reads = { stream: 0 };
    const hub = createJobEventHub({
      read: async (jobId, afterId) => {
        reads.stream++;
        const all = streams.get(jobId) ?? [];
        const at = afterId === '0-0' ? -1 : all.findIndex((e) => e.id === afterId);
        return all.slice(at + 1);
      },
    });
    const h = await harness(overrides);
    await h.app.close();
    apps.pop();
    const app = await buildApp({ ...h.deps, jobEvents: hub.source });
    apps.push(app);
    return { app, jobs: h.jobs, hub, streams, reads };
  }

  /** Every event of a payload with its id (comments left out). */
  const parseAll = (payload: string) =>
    payload.split('\n\n').filter((b) => b.startsWith('event:')).map((b) => {
      const f = Object.fromEntries(b.split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
      return { event: f.event!, id: f.id!, data: JSON.parse(f.data!) as Record<string, unknown> };
    });
  const geoip = { serviceType: 'GeoIP', status: 'Succeeded', success: true, data: { country: 'X' }, errorMessage: null, errorCode: null, completedAt: null, durationMs: 1, attempts: 1 };
  const finished = (): JobDocument => ({ ...doc('Completed'), completionPercentage: 100, results: [geoip as unknown as JobDocument['results'][number]] });

  it('sends the final document at once for a finished job, and ends', async () => {
    const { app, jobs } = await streamHarness();
    jobs.documents.set(JOB, doc('Completed'));
    const res = await app.inject({ method: 'GET', url: `/api/lookup/${JOB}/events` });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(parse(res.payload)).toEqual([{ event: 'completed', data: expect.objectContaining({ jobId: JOB, status: 'Completed' }) }]);
  });

  it('sends the status at once, then the completed document when the job finishes', async () => {
    const { app, jobs, hub } = await streamHarness();
    jobs.documents.set(JOB, doc('Processing'));
    const pending = app.inject({ method: 'GET', url: `/api/lookup/${JOB}/events` });
    await new Promise((r) => setTimeout(r, 50));
    expect(hub.subscribers).toBe(1);
    hub.notify(JOB); // a wake-up while still Processing changes nothing
    await new Promise((r) => setTimeout(r, 20));
    jobs.documents.set(JOB, doc('Completed'));
    hub.notify(JOB);
    const res = await pending;
    expect(parse(res.payload).map((e) => [e.event, e.data.status])).toEqual([['status', 'Processing'], ['completed', 'Completed']]);
    expect(hub.subscribers).toBe(0);
  });

  it('ends open streams when the server shuts down, so close() does not wait for them', async () => {
    const { app, jobs } = await streamHarness();
    jobs.documents.set(JOB, doc('Processing'));
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    const res = await fetch(`${address}/api/lookup/${JOB}/events`);
    const body = res.text();
    await new Promise((r) => setTimeout(r, 50));
    // Without ending the streams first, close() would wait for this one (up to 10 minutes) and time the test out.
    await app.close();
    apps.pop();
    expect(parse(await body).map((e) => e.event)).toEqual(['status']);
  });

  it('replays the recorded events with ids (result data from the document), resumes after Last-Event-ID, 204 after the end', async () => {
    const { app, jobs, streams } = await streamHarness();
    jobs.documents.set(JOB, finished());
    streams.set(JOB, [{ id: '5-0', type: 'result', service: 0 }, { id: '7-1', type: 'completed' }]);
    const all = parseAll((await app.inject({ method: 'GET', url: `/api/lookup/${JOB}/events` })).payload);
    expect(all).toEqual([
      { event: 'result', id: '5-0', data: { jobId: JOB, ...geoip } },
      { event: 'completed', id: '7-1', data: expect.objectContaining({ jobId: JOB, status: 'Completed' }) },
    ]);
    const resumed = await app.inject({ method: 'GET', url: `/api/lookup/${JOB}/events`, headers: { 'last-event-id': '5-0' } });
    expect(parseAll(resumed.payload).map((e) => e.id)).toEqual(['7-1']);
    const after = await app.inject({ method: 'GET', url: `/api/lookup/${JOB}/events`, headers: { 'last-event-id': '7-1' } });
    expect(after.statusCode).toBe(204);
    expect(after.payload).toBe('');
    const bad = await app.inject({ method: 'GET', url: `/api/lookup/${JOB}/events`, headers: { 'last-event-id': 'x-1' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
  });

  it('sends a status (id 0-0), then each event as it is recorded, with `: ping` comments while waiting', async () => {
    const { app, jobs, hub, streams } = await streamHarness({ eventsHeartbeatMs: 50 });
    jobs.documents.set(JOB, doc('Processing'));
    const pending = app.inject({ method: 'GET', url: `/api/lookup/${JOB}/events` });
    await expect.poll(() => hub.subscribers).toBe(1);
    await new Promise((r) => setTimeout(r, 300));
    jobs.documents.set(JOB, finished());
    streams.set(JOB, [{ id: '5-0', type: 'result', service: 0 }, { id: '7-0', type: 'completed' }]);
    hub.notify(JOB);
    const res = await pending;
    expect(parseAll(res.payload).map((e) => [e.event, e.id])).toEqual([['status', '0-0'], ['result', '5-0'], ['completed', '7-0']]);
    expect(res.payload.match(/^: ping$/gm)!.length).toBeGreaterThanOrEqual(2);
  });

  it('follows the entries a wake-up announces without re-reading the stream, reading only their results; skips old ones', async () => {
    const { app, jobs, hub, streams, reads } = await streamHarness();
    jobs.documents.set(JOB, doc('Processing'));
    const getDocument = jobs.getDocument.bind(jobs);
    let documentReads = 0;
    jobs.getDocument = async (id) => (documentReads++, getDocument(id));
    const pending = app.inject({ method: 'GET', url: `/api/lookup/${JOB}/events` });
    await expect.poll(() => hub.subscribers).toBe(1);
    await expect.poll(() => documentReads).toBe(1);
    expect(reads.stream).toBe(1);
    // The outcome is recorded (stream and document), then announced; an entry at or before the position is old.
    const ping = { ...geoip, serviceType: 'Ping', data: { alive: true } };
    jobs.documents.set(JOB, { ...doc('Processing'), results: [geoip, ping] as unknown as JobDocument['results'] });
    streams.set(JOB, [{ id: '5-0', type: 'result', service: 0 }, { id: '6-0', type: 'result', service: 1 }]);
    hub.notify(JOB, [{ id: '5-0', type: 'result', service: 0 }]);
    hub.notify(JOB, [{ id: '5-0', type: 'result', service: 0 }, { id: '6-0', type: 'result', service: 1 }]);
    await new Promise((r) => setTimeout(r, 50));
    expect(documentReads).toBe(1);
    jobs.documents.set(JOB, { ...finished(), results: [geoip, ping] as unknown as JobDocument['results'] });
    hub.notify(JOB, [{ id: '7-0', type: 'completed' }]);
    const events = parseAll((await pending).payload);
    expect(events.map((e) => [e.event, e.id])).toEqual([['status', '0-0'], ['result', '5-0'], ['result', '6-0'], ['completed', '7-0']]);
    expect(events[2]!.data).toEqual({ jobId: JOB, ...ping });
    // One XRANGE (the first read) for the whole stream; the document only for the status and the end.
    expect(reads.stream).toBe(1);
    expect(documentReads).toBe(2);
  });

  it('follows many jobs: composite ids in the order of `jobs`, each event with its jobId; checks the list', async () => {
    const { app, jobs, streams } = await streamHarness();
    const OTHER = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
    jobs.documents.set(JOB, finished());
    jobs.documents.set(OTHER, { ...finished(), jobId: OTHER, status: 'Cancelled' });
    streams.set(JOB, [{ id: '5-0', type: 'result', service: 0 }, { id: '7-0', type: 'completed' }]);
    streams.set(OTHER, [{ id: '6-0', type: 'result', service: 0 }, { id: '8-0', type: 'cancelled' }]);
    const url = `/api/lookup/events?jobs=${JOB},${OTHER}`;
    const res = await app.inject({ method: 'GET', url });
    expect(res.statusCode).toBe(200);
    const events = parseAll(res.payload);
    expect(events.map((e) => [e.data.jobId, e.event, e.id])).toEqual([
      [JOB, 'result', '5-0,0-0'],
      [JOB, 'completed', '7-0,0-0'],
      [OTHER, 'result', '7-0,6-0'],
      [OTHER, 'cancelled', '7-0,8-0'],
    ]);
    const resumed = await app.inject({ method: 'GET', url, headers: { 'last-event-id': '7-0,6-0' } });
    expect(parseAll(resumed.payload).map((e) => [e.event, e.id])).toEqual([['cancelled', '7-0,8-0']]);
    expect((await app.inject({ method: 'GET', url, headers: { 'last-event-id': '7-0,8-0' } })).statusCode).toBe(204);
    for (const [query, headers] of [
      [`${JOB},${JOB}`, {}],
      [`${JOB},nope`, {}],
      [Array.from({ length: 101 }, () => JOB).join(','), {}],
      [`${JOB},${OTHER}`, { 'last-event-id': '7-0' }],
    ] as const) {
      const bad = await app.inject({ method: 'GET', url: `/api/lookup/events?jobs=${query}`, headers });
      expect(bad.statusCode, query.slice(0, 80)).toBe(400);
    }
    expect((await app.inject({ method: 'GET', url: '/api/lookup/events' })).statusCode).toBe(400);
    const unknown = await app.inject({ method: 'GET', url: `/api/lookup/events?jobs=${JOB},3f1c2a4e-5b6d-4e7f-8a9b-000000000000` });
    expect(unknown.statusCode).toBe(404);
  });

  it('answers 503 when it cannot listen for the job (the wake-up channel is down), holding no listener', async () => {
    const h = await harness();
    h.jobs.documents.set(JOB, doc('Processing'));
    let listening = 0;
    const app = await buildApp({
      ...h.deps,
      jobEvents: {
        subscribe: async (jobId) => {
          if (jobId === JOB) throw new Error('redis down');
          listening++;
          return () => void listening--;
        },
        read: async () => [],
      },
    });
    apps.push(app);
    const res = await app.inject({ method: 'GET', url: `/api/lookup/events?jobs=0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d,${JOB}` });
    expect(res.statusCode).toBe(503);
    expect(listening).toBe(0);
  });

  it('answers 404 JSON for an unknown job and 400 for a malformed id', async () => {
    const { app } = await streamHarness();
    const unknown = await app.inject({ method: 'GET', url: `/api/lookup/${JOB}/events` });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ error: 'Job not found' });
    const bad = await app.inject({ method: 'GET', url: '/api/lookup/nope/events' });
    expect(bad.statusCode).toBe(400);
  });
});

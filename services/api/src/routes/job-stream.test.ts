import { describe, expect, it } from 'vitest';
import type { JobDocument } from '@lookup/contracts';
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

  async function streamHarness() {
    const hub = createJobEventHub();
    const h = await harness();
    await h.app.close();
    apps.pop();
    const app = await buildApp({ ...h.deps, jobEvents: hub.source });
    apps.push(app);
    return { app, jobs: h.jobs, hub };
  }

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

  it('answers 404 JSON for an unknown job and 400 for a malformed id', async () => {
    const { app } = await streamHarness();
    const unknown = await app.inject({ method: 'GET', url: `/api/lookup/${JOB}/events` });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ error: 'Job not found' });
    const bad = await app.inject({ method: 'GET', url: '/api/lookup/nope/events' });
    expect(bad.statusCode).toBe(400);
  });
});

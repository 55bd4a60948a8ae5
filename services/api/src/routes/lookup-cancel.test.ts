import { describe, expect, it } from 'vitest';
import type { InjectOptions } from 'fastify';
import { harness, type Harness } from '../testing/app-harness.ts';

describe('DELETE /api/lookup/:jobId (cancellation)', () => {
  const post = (h: Harness, body: unknown, headers: Record<string, string> = {}) =>
    h.app.inject({ method: 'POST', url: '/api/lookup', payload: body as InjectOptions['payload'], headers: { 'content-type': 'application/json', ...headers } });

  it('cancels an unfinished job (202), then answers 409; 404 for an unknown id, 400 for a malformed one', async () => {
    const h = await harness();
    const { jobId } = (await post(h, { target: '8.8.8.8' })).json();
    const res = await h.app.inject({ method: 'DELETE', url: `/api/lookup/${jobId}` });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ jobId, status: 'Cancelled', statusUrl: `/api/lookup/${jobId}` });
    expect(h.completed).toEqual([expect.objectContaining({ jobId, status: 'Cancelled', correlationId: jobId })]);
    const again = await h.app.inject({ method: 'DELETE', url: `/api/lookup/${jobId}` });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ error: 'Job already finished' });
    const unknown = await h.app.inject({ method: 'DELETE', url: '/api/lookup/00000000-0000-4000-8000-000000000000' });
    expect(unknown.statusCode).toBe(404);
    const bad = await h.app.inject({ method: 'DELETE', url: '/api/lookup/nope' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: 'Invalid job id' });
  });

  it("marks the cancellation announced once it is published, and leaves it to the deadline sweep when it could not be", async () => {
    const h = await harness();
    const { jobId } = (await post(h, { target: '8.8.8.8' })).json();
    expect((await h.app.inject({ method: 'DELETE', url: `/api/lookup/${jobId}` })).statusCode).toBe(202);
    expect(h.jobs.notified).toEqual([jobId]);

    const down = await harness({}, { publishJobCompleted: async () => Promise.reject(new Error('channel closed')) });
    const other = (await post(down, { target: '8.8.8.8' })).json().jobId;
    // The cancellation itself stands (202); its announcement is the sweep's (cancel-job.lua keeps the job due).
    expect((await down.app.inject({ method: 'DELETE', url: `/api/lookup/${other}` })).statusCode).toBe(202);
    expect(down.jobs.notified).toEqual([]);
    expect(down.logs).toContainEqual(expect.objectContaining({ msg: 'could not announce the cancellation; the deadline sweep will' }));
  });

  it('gives the job a deadline JOB_DEADLINE_MS after submission', async () => {
    const h = await harness({ jobDeadlineMs: 12_345 });
    const before = Date.now();
    const { jobId } = (await post(h, { target: '8.8.8.8' })).json();
    const job = h.jobs.jobs.get(jobId)!;
    expect(job.deadlineAt).toBeGreaterThanOrEqual(before + 12_345);
    expect(job.deadlineAt).toBeLessThanOrEqual(Date.now() + 12_345);
  });
});

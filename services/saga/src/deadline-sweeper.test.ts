import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { createLogger } from '@lookup/logging';
import { sweepDeadlines } from './deadline-sweeper.ts';

describe('sweepDeadlines', () => {
  it('keeps at most one abort listener on its signal, however many pauses it takes (no MaxListeners warning)', async () => {
    const controller = new AbortController();
    const warnings: string[] = [];
    const onWarning = (w: Error) => void warnings.push(w.name);
    process.on('warning', onWarning);
    let sweeps = 0;
    let most = 0;
    const jobs = {
      dueJobs: async () => {
        sweeps += 1;
        most = Math.max(most, getEventListeners(controller.signal, 'abort').length);
        if (sweeps === 30) controller.abort();
        return [];
      },
      expire: async () => ({ disposition: 'missing' as const, status: '', notified: false, hasCallback: false }),
    };
    await sweepDeadlines({ jobs: jobs as never, announce: async () => undefined, intervalMs: 1, logger: createLogger({ service: 't', level: 'silent' }) }, controller.signal);
    process.off('warning', onWarning);
    expect(sweeps).toBe(30);
    expect(most).toBeLessThanOrEqual(1);
    expect(warnings).not.toContain('MaxListenersExceededWarning');
  });

  it('announces on a later pass a job it expired but could not announce (expire-job.lua keeps it due until announced)', async () => {
    const controller = new AbortController();
    const JOB = 'job-a';
    let passes = 0;
    const announced: string[] = [];
    const jobs = {
      // The store keeps an expired, unannounced job due (EXPIRED_RECHECK_MS later): due on both passes here.
      dueJobs: async () => (++passes <= 2 ? [JOB] : (controller.abort(), [])),
      expire: async () =>
        passes === 1
          ? { disposition: 'expired' as const, status: 'Completed' as const, notified: false, hasCallback: true, createdAt: new Date().toISOString() }
          : { disposition: 'finished' as const, status: 'Completed' as const, notified: announced.length > 0, hasCallback: true },
    };
    const announce = async (jobId: string) => {
      // The first announcement fails (the broker went away, or the sweeper died: the next pass is another sweeper's).
      if (passes === 1) throw new Error('connection closed');
      announced.push(jobId);
    };
    await sweepDeadlines({ jobs: jobs as never, announce, intervalMs: 1, logger: createLogger({ service: 't', level: 'silent' }) }, controller.signal);
    expect(announced).toEqual([JOB]);
  });

  it('announces a cancellation nobody announced as Cancelled (the API could not publish it, or was killed first)', async () => {
    const controller = new AbortController();
    const calls: unknown[][] = [];
    let passes = 0;
    const jobs = {
      dueJobs: async () => (++passes === 1 ? ['job-c', 'job-d'] : (controller.abort(), [])),
      expire: async (jobId: string) =>
        jobId === 'job-c'
          ? { disposition: 'finished' as const, status: 'Cancelled' as const, notified: false, hasCallback: true }
          : { disposition: 'finished' as const, status: 'Cancelled' as const, notified: true, hasCallback: true },
    };
    await sweepDeadlines(
      { jobs: jobs as never, announce: async (...args) => void calls.push(args), intervalMs: 1, logger: createLogger({ service: 't', level: 'silent' }) },
      controller.signal,
    );
    expect(calls).toEqual([['job-c', true, 'Cancelled']]);
  });
});

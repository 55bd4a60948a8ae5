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
});

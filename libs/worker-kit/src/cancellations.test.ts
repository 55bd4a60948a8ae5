import { describe, expect, it } from 'vitest';
import { CANCELLED_MEMORY_MS, JobCancelled, createCancellations } from './cancellations.ts';

const JOB = '0b6f3c9e-3f7e-4a52-9a39-5f1b7d1d2c11';
const OTHER = '1b6f3c9e-3f7e-4a52-9a39-5f1b7d1d2c11';

describe('cancellations', () => {
  it('aborts the running attempts of the cancelled job only', () => {
    const c = createCancellations();
    const a = c.watch(JOB);
    const b = c.watch(OTHER);
    expect(c.cancel(JOB.toUpperCase())).toBe(1);
    expect(a.signal.aborted).toBe(true);
    expect(a.signal.reason).toBeInstanceOf(JobCancelled);
    expect(b.signal.aborted).toBe(false);
  });

  it('aborts at once an attempt that starts shortly after its job was cancelled, and forgets it later', () => {
    let now = 1_000;
    const c = createCancellations(() => now);
    expect(c.cancel(JOB)).toBe(0);
    expect(c.watch(JOB).signal.aborted).toBe(true);
    now += CANCELLED_MEMORY_MS;
    expect(c.watch(JOB).signal.aborted).toBe(false);
  });

  it('does not abort an attempt released before the cancellation', () => {
    const c = createCancellations();
    const a = c.watch(JOB);
    a.release();
    expect(c.cancel(JOB)).toBe(0);
    expect(a.signal.aborted).toBe(false);
  });
});

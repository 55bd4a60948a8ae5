import { describe, expect, it } from 'vitest';
import { jobCompletedEvent } from './events.ts';
import { MessageValidators } from './messages.ts';

describe('jobCompletedEvent', () => {
  it('builds one valid job.completed per job and status, its id fixed per job', () => {
    const jobId = '0b6f3c9e-3f7e-4a52-9a39-5f1b7d1d2c11';
    const now = '2026-11-22T12:00:00.000Z';
    for (const status of ['Completed', 'Cancelled'] as const) {
      const event = jobCompletedEvent(jobId, status, now);
      expect(MessageValidators.jobCompleted.check(event)).toBe(true);
      expect(event).toEqual({ messageId: `${jobId}:completed`, correlationId: jobId, schemaVersion: 1, occurredAt: now, jobId, status, completedAt: now });
    }
  });
});

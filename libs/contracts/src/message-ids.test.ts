import { describe, expect, it } from 'vitest';
import { commandMessageId, jobCompletedMessageId, taskCompletedMessageId } from './message-ids.ts';
import { LookupCommandSchema } from './messages.ts';

const JOB = '7c97f16d-c8dc-4edd-a4d6-d13c9db6cd1e';

describe('message ids', () => {
  it('keep the wire format: <job>:<service>:<attempt>, <job>:<service>:done, <job>:completed', () => {
    expect(commandMessageId(JOB, 3, 1)).toBe(`${JOB}:3:1`);
    expect(taskCompletedMessageId(JOB, 0)).toBe(`${JOB}:0:done`);
    expect(jobCompletedMessageId(JOB)).toBe(`${JOB}:completed`);
  });

  it('give each attempt its own id and every announcement of one outcome the same id', () => {
    const attempts = Array.from({ length: 100 }, (_, i) => commandMessageId(JOB, 2, i + 1));
    expect(new Set(attempts).size).toBe(100);
    expect(attempts).not.toContain(taskCompletedMessageId(JOB, 2));
    expect(taskCompletedMessageId(JOB, 2)).toBe(taskCompletedMessageId(JOB, 2));
    expect(taskCompletedMessageId(JOB, 2)).not.toBe(taskCompletedMessageId(JOB, 1));
  });

  it('fit the envelope bound of every message, at the highest attempt', () => {
    const max = LookupCommandSchema.properties.messageId.maxLength!;
    expect(commandMessageId(JOB, 3, LookupCommandSchema.properties.attempt.maximum!).length).toBeLessThanOrEqual(max);
    expect(taskCompletedMessageId(JOB, 3).length).toBeLessThanOrEqual(max);
    expect(jobCompletedMessageId(JOB).length).toBeLessThanOrEqual(max);
  });
});

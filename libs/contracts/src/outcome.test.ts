import { describe, expect, it } from 'vitest';
import { permanentError } from './errors.ts';
import { taskCompletedMessageId } from './message-ids.ts';
import { MessageValidators, type TaskCompleted } from './messages.ts';
import { errorCodeOf, outcomeOf } from './outcome.ts';

const JOB = '7c97f16d-c8dc-4edd-a4d6-d13c9db6cd1e';
const event: TaskCompleted = {
  messageId: taskCompletedMessageId(JOB, 1), correlationId: JOB, schemaVersion: 1, occurredAt: '2026-12-01T05:36:21.046Z',
  jobId: JOB, serviceType: 1, status: 'Failed', success: false, errorMessage: 'refused', errorCode: 'TARGET_REFUSED',
  completedAt: '2026-12-01T05:36:21.046Z', durationMs: 3, attempts: 1, location: null,
};

describe('the outcome record', () => {
  it('task.completed carries errorCode; a message without it (sent before it existed) still validates', () => {
    expect(MessageValidators.taskCompleted.check(event)).toBe(true);
    expect(MessageValidators.taskCompleted.check({ ...event, errorCode: null })).toBe(true);
    const { errorCode: _, ...old } = event;
    expect(MessageValidators.taskCompleted.check(old)).toBe(true);
  });

  it('errorCode is UPPER_SNAKE and bounded', () => {
    for (const bad of ['target_refused', 'TARGET REFUSED', '1CODE', '', 'X'.repeat(65), 42]) {
      expect(MessageValidators.taskCompleted.check({ ...event, errorCode: bad })).toBe(false);
    }
    expect(MessageValidators.taskCompleted.check({ ...event, errorCode: 'X'.repeat(64) })).toBe(true);
  });

  it("errorCodeOf keeps a coded error's code when it fits the schema, else null", () => {
    expect(errorCodeOf(permanentError('TARGET_REFUSED', 'no'))).toBe('TARGET_REFUSED');
    expect(errorCodeOf(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBe('ECONNREFUSED');
    expect(errorCodeOf(Object.assign(new Error('x'), { code: 'ERR_lower' }))).toBeNull();
    expect(errorCodeOf(Object.assign(new Error('x'), { code: 7 }))).toBeNull();
    expect(errorCodeOf(new Error('plain'))).toBeNull();
    expect(errorCodeOf('a string')).toBeNull();
  });

  it('outcomeOf takes exactly the outcome fields, a missing errorCode as null', () => {
    expect(outcomeOf(event)).toEqual({
      status: 'Failed', success: false, errorMessage: 'refused', errorCode: 'TARGET_REFUSED',
      completedAt: '2026-12-01T05:36:21.046Z', durationMs: 3, attempts: 1,
    });
    const { errorCode: _, ...old } = event;
    expect(outcomeOf(old).errorCode).toBeNull();
  });
});

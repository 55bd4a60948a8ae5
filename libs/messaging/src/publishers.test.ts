import { describe, expect, it } from 'vitest';
import type { JobCompleted, JobSubmitted, LookupCommand, TaskCompleted } from '@lookup/contracts';
import { createPublishers } from './publishers.ts';
import { topology } from './topology.ts';
import type { PublishOptions } from './broker.ts';

const JOB = '0b6f3c9e-3f7e-4a52-9a39-5f1b7d1d2c11';
const envelope = { correlationId: JOB, schemaVersion: 1 as const, occurredAt: '2026-11-22T12:00:00.000Z', jobId: JOB };

function fakeBroker() {
  const sent: { exchange: string; routingKey: string; body: unknown; options: PublishOptions }[] = [];
  const delayed: { slug: string; body: unknown; options: unknown }[] = [];
  const broker = {
    topology: topology('ns'),
    publish: async (exchange: string, routingKey: string, body: unknown, options: PublishOptions) => void sent.push({ exchange, routingKey, body, options }),
    publishDelayed: async (slug: string, body: unknown, options: unknown) => {
      delayed.push({ slug, body, options });
      return 16;
    },
  };
  return { publishers: createPublishers(broker), sent, delayed };
}

describe('typed publishers', () => {
  it('state each publication once: exchange, routing key, ids, persistence and mandatory-ness', async () => {
    const { publishers, sent } = fakeBroker();
    const submitted: JobSubmitted = { ...envelope, messageId: `${JOB}:submitted`, target: '127.0.0.1', targetType: 'IPAddress', services: [0] };
    const command: LookupCommand = { ...envelope, messageId: `${JOB}:1:1`, target: '127.0.0.1', targetType: 'IPAddress', serviceType: 1, attempt: 1 };
    const task = { ...envelope, messageId: `${JOB}:1:done`, serviceType: 1 } as TaskCompleted;
    const completed: JobCompleted = { ...envelope, messageId: `${JOB}:completed`, status: 'Completed', completedAt: envelope.occurredAt };
    await publishers.jobSubmitted(submitted);
    await publishers.command(command);
    await publishers.taskCompleted(task);
    await publishers.jobCompleted(completed);
    expect(sent.map((s) => [s.exchange, s.routingKey, s.options])).toEqual([
      // The per-job traffic may share envelopes (coalesce); the rest always goes alone.
      ['ns.events', 'job.submitted', { messageId: `${JOB}:submitted`, correlationId: JOB, persistent: true, mandatory: true, coalesce: true }],
      // Commands under the work queues' own cap (COMMAND_BATCH_MAX).
      ['ns.commands', 'lookup.ping', { messageId: `${JOB}:1:1`, correlationId: JOB, persistent: true, mandatory: true, coalesce: true, workQueue: true }],
      ['ns.events', 'task.completed', { messageId: `${JOB}:1:done`, correlationId: JOB, persistent: true, mandatory: true, coalesce: true }],
      ['ns.events', 'job.completed', { messageId: `${JOB}:completed`, correlationId: JOB, persistent: true, mandatory: false }],
    ]);
    expect(sent.map((s) => s.body)).toEqual([submitted, command, task, completed]);
  });

  it("send a retry through the delay queues of the command's service", async () => {
    const { publishers, delayed } = fakeBroker();
    const command: LookupCommand = { ...envelope, messageId: `${JOB}:2:2`, target: 'example.test', targetType: 'Domain', serviceType: 2, attempt: 2 };
    await publishers.commandRetry(command, 500);
    expect(delayed).toEqual([{ slug: 'rdap', body: command, options: { messageId: `${JOB}:2:2`, correlationId: JOB, delayMs: 500 } }]);
  });

  it("send a high or low command's retry through its priority's delay queues (back to its priority's work queue)", async () => {
    const { publishers, delayed } = fakeBroker();
    const base: LookupCommand = { ...envelope, messageId: `${JOB}:2:2`, target: 'example.test', targetType: 'Domain', serviceType: 2, attempt: 2 };
    await publishers.commandRetry({ ...base, priority: 'high' }, 500);
    await publishers.commandRetry({ ...base, priority: 'low' }, 500);
    await publishers.commandRetry({ ...base, priority: 'normal' }, 500);
    expect(delayed.map((d) => d.slug)).toEqual(['rdap.high', 'rdap.low', 'rdap']);
  });
});

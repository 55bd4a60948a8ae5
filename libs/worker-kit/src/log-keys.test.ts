// Issue 12: a worker's line about a lookup names the process in `service` and the lookup service in
// `lookupService`; before, both were `service` (`"service":"worker-ping",...,"service":"Ping"`), and JSON tools
// kept the last one, so a line no longer said which process wrote it.
import { describe, expect, it } from 'vitest';
import { Type } from '@sinclair/typebox';
import { createLogger } from '@lookup/logging';
import { createTargetPolicy, type LookupCommand } from '@lookup/contracts';
import type { ReceivedMessage } from '@lookup/messaging';
import { createCommandHandler } from './command-handler.ts';

const JOB = '0b6f3c9e-3f7e-4a52-9a39-5f1b7d1d2c11';

describe('worker log lines', () => {
  it('carry one `service` key (the process) and the lookup service as `lookupService`', async () => {
    const raw: string[] = [];
    const location = { storage: 'redis' as const, key: `ns:result:${JOB}:1` };
    const handle = createCommandHandler({
      service: 1,
      logger: createLogger({ service: 'worker-ping', level: 'trace', destination: { write: (line: string) => void raw.push(line) } }),
      policy: { timeoutMs: 1000, maxAttempts: 3, baseBackoffMs: 10, maxBackoffMs: 100 },
      targetPolicy: createTargetPolicy({ allowPrivate: true }),
      dataSchema: Type.Object({ alive: Type.Boolean() }),
      lookup: async () => ({ alive: true }),
      jobs: { getStatus: async () => 'Processing' as const },
      results: {
        locate: () => location,
        find: async () => undefined,
        saveIfOpen: async (result) => ({ location, result, created: true }),
      },
      publishTaskCompleted: async () => undefined,
      publishRetry: async () => undefined,
    });
    const body: LookupCommand = {
      messageId: `${JOB}:1:1`,
      correlationId: JOB,
      schemaVersion: 1,
      occurredAt: new Date().toISOString(),
      jobId: JOB,
      target: '127.0.0.2',
      targetType: 'IPAddress',
      serviceType: 1,
      attempt: 1,
    };
    await handle({ body, redelivered: false, queue: 'q', headers: {}, raw: {} } as unknown as ReceivedMessage<LookupCommand>);
    const done = raw.find((l) => l.includes('"lookup done"'));
    expect(done, raw.join('')).toBeDefined();
    expect(done!.match(/"service":/g)).toHaveLength(1);
    expect(JSON.parse(done!)).toMatchObject({ service: 'worker-ping', lookupService: 'Ping', jobId: JOB, msg: 'lookup done' });
    for (const line of raw) expect(line.match(/"service":/g), line).toHaveLength(1);
  });
});

import { describe, expect, it } from 'vitest';
import { createLogger } from '@lookup/logging';
import { AmqpConnection, RecoveringChannel } from './connection.ts';

const logger = createLogger({ service: 'test', level: 'silent' });
// Never dialled: every connection here is closed before it starts.
const url = 'amqp://127.0.0.1:1';

describe('AmqpConnection', () => {
  it('close() is idempotent, and a closed connection never connects', async () => {
    let setups = 0;
    const connection = new AmqpConnection({ url, name: 't', logger, label: 'test', setup: async () => void setups++ });
    const first = connection.close();
    expect(connection.close()).toBe(first);
    await first;
    await expect(connection.start()).rejects.toMatchObject({ code: 'AMQP_CLOSED', retryable: false });
    expect(connection.connection).toBeUndefined();
    expect(setups).toBe(0);
  });

  it('a closed RecoveringChannel resolves start() and is not ready', async () => {
    const link = new RecoveringChannel({ url, name: 't', logger, confirm: false, setup: async () => undefined });
    await link.close();
    await link.close();
    await expect(link.start()).resolves.toBeUndefined();
    expect(link.ready).toBe(false);
  });
});

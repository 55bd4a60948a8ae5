import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { maskUrl } from '@lookup/config';
import { createLogger } from '@lookup/logging';
import { AmqpConnection, RecoveringChannel } from '@lookup/messaging';
import { AMQP_URL } from './support/env.ts';
import { freePort, waitFor } from './support/processes.ts';

// AMQP_URL as a list, against the real broker: a node that does not answer is skipped at once (no backoff before the
// next node), and a lost connection reconnects to the next node of the list. (tests/cluster/ fails a real node over.)
const open: AmqpConnection[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

function logged() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, logger: createLogger({ service: 'test', level: 'info', destination }) };
}

function connection(url: string, firstNode: number, logger: ReturnType<typeof createLogger>) {
  let setups = 0;
  // A minute's backoff: had the manager backed off before trying the next node, start() would outlast the test.
  const c = new AmqpConnection({ url, firstNode, name: 'url-list-test', logger, label: 'rabbitmq', reconnectMinMs: 60_000, reconnectMaxMs: 120_000, setup: async () => void setups++ });
  open.push(c);
  return { c, setups: () => setups };
}

describe('AMQP_URL with several nodes', () => {
  it('skips a node that does not answer and connects to the next at once', async () => {
    const dead = `amqp://guest:guest@127.0.0.1:${await freePort()}`;
    const { lines, logger } = logged();
    const { c, setups } = connection(`${dead},${AMQP_URL}`, 0, logger);
    await c.start();
    expect(c.connection).toBeDefined();
    expect(setups()).toBe(1);
    const failed = lines.filter((l) => l.msg === 'rabbitmq connect failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ amqp: maskUrl(dead), next: maskUrl(AMQP_URL), retryInMs: 0 });
    expect(lines.filter((l) => l.msg === 'rabbitmq connected').map((l) => l.amqp)).toEqual([maskUrl(AMQP_URL)]);
  });

  it('reconnects to the next node when its connection is lost, and runs setup again there', async () => {
    // The same broker under a second address stands for a second node.
    const other = AMQP_URL.replace('127.0.0.1', 'localhost');
    expect(other).not.toBe(AMQP_URL);
    const { lines, logger } = logged();
    const { c, setups } = connection(`${AMQP_URL},${other}`, 0, logger);
    await c.start();
    c.restart(c.connection!);
    await waitFor(async () => (setups() === 2 && c.connection ? true : undefined), 30_000);
    expect(lines.filter((l) => l.msg === 'rabbitmq connected').map((l) => l.amqp)).toEqual([maskUrl(AMQP_URL), maskUrl(other)]);
    expect(lines.find((l) => l.msg === 'rabbitmq connection lost; reconnecting')).toMatchObject({ amqp: maskUrl(AMQP_URL), next: maskUrl(other) });
  });

  it('the resource RPC\'s RecoveringChannel skips a node that does not answer too, and sets its channel up on the next', async () => {
    const dead = `amqp://guest:guest@127.0.0.1:${await freePort()}`;
    const { lines, logger } = logged();
    let channels = 0;
    const link = new RecoveringChannel({ url: `${dead},${AMQP_URL}`, firstNode: 0, name: 'url-list-rpc', logger, confirm: false, reconnectMinMs: 60_000, reconnectMaxMs: 120_000, setup: async () => void channels++ });
    try {
      await link.start();
      expect(link.ready).toBe(true);
      expect(channels).toBe(1);
      expect(lines.find((l) => l.msg === 'rpc connect failed')).toMatchObject({ amqp: maskUrl(dead), next: maskUrl(AMQP_URL), retryInMs: 0 });
    } finally {
      await link.close();
    }
  });
});

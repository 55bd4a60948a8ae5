// Issue 12: the operator CLIs. `npm run dlq` reads without declaring anything, says which namespace it read, and
// refuses bad flags with its usage and exit 2; `npm run namespace -- delete NS --yes` removes a namespace's queues,
// exchanges and Redis keys, and refuses without NS or without --yes.
import { spawn } from 'node:child_process';
import amqp from 'amqplib';
import type { Redis } from 'ioredis';
import { keysEverywhere, rawRedis } from './support/redis.ts';
import { afterAll, describe, expect, it } from 'vitest';
import { declarations } from '@lookup/messaging';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { AMQP_URL, REDIS_URL, REPO_ROOT } from './support/env.ts';

const namespaces: string[] = [];
/** The topology a suite with the default retry settings declares (a few delay buckets, not all of them). */
const topologyOf = (ns: string) => declarations(ns, { maxAttempts: 3, retryDelays: { baseMs: 500, maxMs: 30_000 } });
afterAll(async () => {
  for (const ns of namespaces) await cleanupNamespace(ns);
});

function cli(script: 'dlq' | 'namespace', args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', `scripts/${script}.ts`, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, AMQP_URL, REDIS_URL, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => void (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => void (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Which of a namespace's declared queues and exchanges exist, checked passively from a raw connection. */
async function existing(ns: string): Promise<{ queues: string[]; exchanges: string[] }> {
  const d = topologyOf(ns);
  const conn = await amqp.connect(AMQP_URL);
  const found = { queues: [] as string[], exchanges: [] as string[] };
  try {
    for (const q of d.queues) {
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      if (await ch.checkQueue(q.name).then(() => true, () => false)) {
        found.queues.push(q.name);
        await ch.close();
      }
    }
    for (const e of d.exchanges) {
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      if (await ch.checkExchange(e.name).then(() => true, () => false)) {
        found.exchanges.push(e.name);
        await ch.close();
      }
    }
  } finally {
    await conn.close();
  }
  return found;
}

/** Declares a namespace's topology as a service would, with one dead letter in it, and two Redis keys. */
async function populate(ns: string): Promise<void> {
  const d = topologyOf(ns);
  const conn = await amqp.connect(AMQP_URL);
  try {
    const ch = await conn.createConfirmChannel();
    for (const e of d.exchanges) await ch.assertExchange(e.name, e.type, { durable: true });
    for (const q of d.queues) {
      await ch.assertQueue(q.name, { durable: true, arguments: q.arguments });
      for (const b of q.bindings) await ch.bindQueue(q.name, b.exchange, b.routingKey);
    }
    ch.sendToQueue(`${ns}.dead-letter`, Buffer.from('{"oops":1}'), { messageId: 'dl-1', headers: { 'x-dead-letter-reason': 'test' } });
    await ch.waitForConfirms();
    await ch.close();
  } finally {
    await conn.close();
  }
  const redis = rawRedis();
  try {
    await redis.set(`${ns}:job:x`, '1');
    await redis.set(`${ns}:result:x:1`, '1');
  } finally {
    redis.disconnect();
  }
}

async function redisKeys(ns: string): Promise<string[]> {
  const redis = rawRedis();
  try {
    return (await keysEverywhere(redis, `${ns}:*`)).sort();
  } finally {
    redis.disconnect();
  }
}

describe('npm run dlq', () => {
  it('list on a namespace that was never started declares nothing, names the namespace, and exits 1', async () => {
    const ns = newNamespace('cli');
    namespaces.push(ns);
    const r = await cli('dlq', ['list'], { NAMESPACE: ns });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`NAMESPACE ${ns}`);
    expect(r.stderr).toContain(`no queue ${ns}.dead-letter`);
    expect(await existing(ns)).toEqual({ queues: [], exchanges: [] });
  });

  it('list reads an existing dead-letter queue and leaves the message in it', async () => {
    const ns = newNamespace('cli');
    namespaces.push(ns);
    await populate(ns);
    const r = await cli('dlq', ['list', '--limit', '5', '--namespace', ns]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`NAMESPACE ${ns}: dead-letter queue ${ns}.dead-letter`);
    expect(JSON.parse(r.stdout)).toMatchObject({ count: 1, messages: [{ messageId: 'dl-1', reason: 'test' }] });
    const again = await cli('dlq', ['list', '--namespace', ns]);
    expect(JSON.parse(again.stdout)).toMatchObject({ count: 1 });
  });

  it.each([
    [['list', '--limit', 'abc'], /--limit must be a whole number from 1 to 10000, got 'abc'/],
    [['list', '--limit', '0'], /--limit must be a whole number/],
    [['list', '--bogus'], /Unknown option '--bogus'/],
    [['list', 'extra'], /unexpected argument 'extra'/],
    [[], /no command given/],
    [['purge'], /unknown command 'purge'/],
    [['replay'], /give --id MESSAGE_ID or --all/],
    [['discard', '--id', 'x', '--all'], /not both/],
  ])('refuses %j with its usage and exit 2, before connecting', async (args, message) => {
    const r = await cli('dlq', args, { AMQP_URL: 'amqp://guest:guest@127.0.0.1:9' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain('usage: npm run dlq');
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });
});

describe('npm run namespace', () => {
  it('refuses without a namespace, or with a bad one (exit 2)', async () => {
    for (const args of [['delete'], ['delete', '--yes'], ['delete', 'a.b', '--yes'], ['show']]) {
      const r = await cli('namespace', args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain('usage: npm run namespace');
    }
  });

  it('without --yes deletes nothing and says what it would delete (exit 1); with --yes deletes queues, exchanges and keys', async () => {
    const ns = newNamespace('cli');
    namespaces.push(ns);
    await populate(ns);
    const before = await existing(ns);
    expect(before.queues.length).toBeGreaterThan(5);
    expect(before.exchanges).toHaveLength(4);

    const show = await cli('namespace', ['show', ns]);
    expect(show.code, show.stderr).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({ namespace: ns, redisKeys: 2, exchanges: before.exchanges });

    const dry = await cli('namespace', ['delete', ns]);
    expect(dry.code).toBe(1);
    expect(dry.stderr).toMatch(new RegExp(`would delete ${before.queues.length} queues \\(1 messages\\), 4 exchanges and 2 Redis keys of namespace ${ns}; nothing deleted`));
    expect(await existing(ns)).toEqual(before);
    expect(await redisKeys(ns)).toHaveLength(2);

    const del = await cli('namespace', ['delete', ns, '--yes']);
    expect(del.code, del.stderr).toBe(0);
    expect(JSON.parse(del.stdout)).toEqual({ namespace: ns, deleted: { queues: before.queues.length, messages: 1, exchanges: 4, redisKeys: 2 } });
    expect(await existing(ns)).toEqual({ queues: [], exchanges: [] });
    expect(await redisKeys(ns)).toEqual([]);
  });

  it('refuses to delete a namespace whose processes are consuming, unless --force', async () => {
    const ns = newNamespace('cli');
    namespaces.push(ns);
    await populate(ns);
    const conn = await amqp.connect(AMQP_URL);
    try {
      const ch = await conn.createChannel();
      await ch.consume(`${ns}.saga`, () => undefined);
      const r = await cli('namespace', ['delete', ns, '--yes']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`consumers on ${ns}.saga`);
      expect((await existing(ns)).queues).toContain(`${ns}.saga`);
    } finally {
      await conn.close();
    }
  });
});

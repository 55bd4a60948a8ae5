// Issue 15: leases through a Sentinel failover. Redis replicates asynchronously, so a grant (and its epoch INCR)
// the master answered may be missing on the replica that takes over. With REDIS_WAIT_REPLICAS a grant or renewal
// counts only once a replica has acknowledged it (WAIT), so whatever the promoted replica holds is at least what
// any holder acted on: two holders never write, and fencing epochs strictly increase from tenure to tenure.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { LeaseKeeper, createLeaseStore, leaseTimings, coordinationKeys } from '@lookup/coordination';
import { createLogger } from '@lookup/logging';
import { createRedis } from '@lookup/store';
import { newNamespace } from '../support/namespace.ts';
import { waitFor } from '../support/processes.ts';
import { startSentinelSetup, startStandaloneRedis, stopAllRedisNodes, type SentinelSetup } from '../support/redis-nodes.ts';

const ns = newNamespace('lease-failover');
const logger = createLogger({ service: 'lease-failover-test', level: 'silent' });
const timings = leaseTimings({ heartbeatMs: 200, maxMissed: 3 }); // 600 ms leases, renewed every 200 ms
const clients: Redis[] = [];
let setup: SentinelSetup;

function client(target: { redisUrl: string; redisSentinels: { host: string; port: number }[]; redisMasterName: string }, waitReplicas = 1): Redis {
  const r = createRedis({ target: { ...target, redisWaitReplicas: waitReplicas, redisWaitTimeoutMs: 100 }, logger, name: 'lease-failover-test' });
  clients.push(r);
  return r;
}

beforeAll(async () => {
  setup = await startSentinelSetup('lease-test');
});

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await stopAllRedisNodes();
});

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('leases with REDIS_WAIT_REPLICAS', () => {
  it('a grant no replica acknowledged is not granted: the keeper never holds it', async () => {
    const alone = await startStandaloneRedis();
    const target = { redisUrl: `redis://127.0.0.1:${alone.port}`, redisSentinels: [], redisMasterName: 'unused' };
    const store = createLeaseStore({ redis: client(target), namespace: ns });
    await expect(store.acquire('unreplicated', 'A', 600)).rejects.toMatchObject({ code: 'NOT_REPLICATED' });
    const keeper = new LeaseKeeper({ redis: client(target), namespace: ns, name: 'unreplicated-keeper', timings, logger });
    const acquired: number[] = [];
    keeper.on('acquired', ({ epoch }) => acquired.push(epoch));
    keeper.start();
    // Several grants, each answered by the master and refused by the WAIT (the epoch counter shows them).
    const raw = client(target, 0);
    await waitFor(async () => (Number(await raw.get(coordinationKeys(ns).leaseEpoch('unreplicated-keeper'))) >= 3 ? true : undefined), 10_000);
    expect(keeper.held).toBe(false);
    expect(acquired).toEqual([]);
    await keeper.stop();
    await alone.kill();
  });

  it('two holders churning through three Sentinel failovers: epochs strictly increase, never two writers', async () => {
    const target = { redisUrl: 'redis://127.0.0.1:1', redisSentinels: setup.sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })), redisMasterName: setup.masterName };
    // LEASE_TEST_WAIT_REPLICAS=0 shows what the WAIT prevents: this test then fails (a stale holder writes).
    const wait = Number(process.env.LEASE_TEST_WAIT_REPLICAS ?? 1);
    const keepers = ['A', 'B'].map((id) => new LeaseKeeper({ redis: client(target, wait), namespace: ns, name: 'fenced', timings, holderId: id, logger }));
    // The fenced resource: every write carries the writer's epoch; a write below the highest epoch seen, or a
    // second holder at one epoch, is exactly what a lost grant would cause.
    const writes: { holder: string; epoch: number }[] = [];
    let writing = true;
    const writers = keepers.map(async (k) => {
      while (writing) {
        if (k.held) writes.push({ holder: k.holderId, epoch: k.epoch! });
        await pause(5);
      }
    });
    // Churn: whoever holds gives the lease up every 400 ms, so grants keep happening while the master changes.
    let churning = true;
    const churn = (async () => {
      while (churning) {
        await pause(400);
        const holder = keepers.find((k) => k.held);
        if (holder) {
          await holder.stop();
          // Back in the race only after the other contender's next attempt (every 200 ms) has taken it.
          void pause(250).then(() => churning && holder.start());
        }
      }
    })();
    for (const k of keepers) k.start();
    const masters = [await setup.masterPort()];
    for (let i = 0; i < 3; i++) {
      await pause(2500);
      masters.push(await setup.failover());
    }
    await pause(2000);
    churning = false;
    await churn;
    writing = false;
    await Promise.all(writers);
    await Promise.all(keepers.map((k) => k.stop()));

    const tenures: { holder: string; epoch: number }[] = [];
    for (const w of writes) {
      const last = tenures.at(-1);
      if (!last || last.epoch !== w.epoch || last.holder !== w.holder) tenures.push(w);
    }
    console.log(`[lease figures] ${JSON.stringify({ masters, writes: writes.length, tenures: tenures.length, epochs: tenures.map((t) => `${t.holder}${t.epoch}`).join(' ') })}`);
    expect(new Set(masters).size).toBe(2); // back and forth between the two servers
    expect(masters.every((m, i) => i === 0 || m !== masters[i - 1])).toBe(true);
    expect(new Set(tenures.map((t) => t.holder))).toEqual(new Set(['A', 'B']));
    // Strictly increasing from tenure to tenure: no epoch reused (a lost INCR), no stale holder writing later.
    for (let i = 1; i < tenures.length; i++) expect(tenures[i]!.epoch, `tenure ${i}: ${JSON.stringify(tenures.slice(i - 1, i + 1))}`).toBeGreaterThan(tenures[i - 1]!.epoch);
  });
});

// libs/coordination against real Redis: the seed's (Logx.WorkerCoordination's) defects, shown fixed.
//  - no fencing: every grant carries an epoch that only grows, and a stale holder cannot renew or release;
//  - leader work not interrupted on loss: the leader's signal is aborted, at its own deadline, before anyone
//    else can be elected;
//  - overlapping takeover windows: across many handovers, no two leaders' tenures overlap.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { rawRedis } from './support/redis.ts';
import {
  LeaderElection,
  LeaseKeeper,
  Membership,
  createLeaseStore,
  createResourceDirectory,
  leaseTimings,
  monotonicNow,
} from '@lookup/coordination';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';

import { waitFor } from './support/processes.ts';

const ns = newNamespace('coord');
const timings = leaseTimings({ heartbeatMs: 100, maxMissed: 4 }); // 400 ms leases
const clients: Redis[] = [];

function client(): Redis {
  // No offline queue: while "partitioned" (disconnected), commands fail at once instead of waiting.
  const r = rawRedis({ enableOfflineQueue: false, maxRetriesPerRequest: 0, lazyConnect: false, retryStrategy: () => 50 });
  r.on('error', () => undefined);
  clients.push(r);
  return r;
}

async function ready(r: Redis): Promise<Redis> {
  if (r.status !== 'ready') await new Promise((res) => r.once('ready', res));
  return r;
}

let admin: Redis;
beforeAll(async () => {
  admin = await ready(client());
});

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await cleanupNamespace(ns);
});

describe('lease with fencing token', () => {
  it('grants a free lease with an epoch that grows on every grant, and refuses a stale holder', async () => {
    const store = createLeaseStore({ redis: admin, namespace: ns });
    const a = await store.acquire('fence', 'A', 300);
    expect(a).toEqual({ granted: true, epoch: 1 });
    const b = await store.acquire('fence', 'B', 300);
    expect(b.granted).toBe(false);
    if (!b.granted) expect(b.holder).toBe('A');
    await waitFor(async () => ((await store.current('fence')) ? undefined : true), 5_000);
    const b2 = await store.acquire('fence', 'B', 300);
    expect(b2).toEqual({ granted: true, epoch: 2 });
    // A comes back: its epoch is stale, so it can neither renew nor release B's lease.
    expect(await store.renew('A', 300, [{ name: 'fence', epoch: 1 }])).toEqual([false]);
    expect(await store.release('fence', 'A', 1)).toBe(false);
    expect((await store.current('fence'))?.holder).toBe('B');
    // Even B with a wrong epoch is refused; with its own it renews and releases.
    expect(await store.renew('B', 300, [{ name: 'fence', epoch: 1 }])).toEqual([false]);
    expect(await store.renew('B', 300, [{ name: 'fence', epoch: 2 }])).toEqual([true]);
    expect(await store.release('fence', 'B', 2)).toBe(true);
    expect((await store.acquire('fence', 'C', 300)).epoch).toBe(3);
  });

  it('a holder cut off from Redis gives the lease up before anyone else can get it', async () => {
    const events: { who: string; what: string; at: number; epoch: number }[] = [];
    const aRedis = await ready(client());
    const a = new LeaseKeeper({ redis: aRedis, namespace: ns, name: 'cutoff', timings, holderId: 'A' });
    a.on('acquired', (e) => events.push({ who: 'A', what: 'acquired', at: monotonicNow(), epoch: e.epoch }));
    a.on('lost', (e) => events.push({ who: 'A', what: 'lost', at: monotonicNow(), epoch: e.epoch }));
    a.start();
    await waitFor(async () => (a.held ? true : undefined), 5_000);
    const aSignal = a.signal;
    const b = new LeaseKeeper({ redis: await ready(client()), namespace: ns, name: 'cutoff', timings, holderId: 'B' });
    b.on('acquired', (e) => events.push({ who: 'B', what: 'acquired', at: monotonicNow(), epoch: e.epoch }));
    b.start();
    // Partition A from Redis: its renewals fail, nothing else changes.
    aRedis.disconnect(false);
    await waitFor(async () => (b.held ? true : undefined), 10_000);
    const lostA = events.find((e) => e.who === 'A' && e.what === 'lost');
    const gotB = events.find((e) => e.who === 'B' && e.what === 'acquired');
    expect(lostA, 'A never noticed it lost the lease').toBeDefined();
    expect(aSignal.aborted).toBe(true);
    expect(a.held).toBe(false);
    expect(lostA!.at).toBeLessThan(gotB!.at);
    expect(gotB!.epoch).toBeGreaterThan(lostA!.epoch);
    await b.stop();
    await a.stop();
  });
});

describe('leader election', () => {
  it('interrupts the leader\'s work when it loses leadership, before another leader starts', async () => {
    const timeline: { id: string; what: 'start' | 'stop'; at: number; epoch: number }[] = [];
    const partitioned = await ready(client());
    const make = (id: string, redis: Redis) => {
      const e = new LeaderElection({ redis, namespace: ns, name: 'sweeper', timings, id });
      e.on('elected', ({ epoch, signal }) => {
        timeline.push({ id, what: 'start', at: monotonicNow(), epoch });
        // The "work": runs until its signal is aborted.
        signal.addEventListener('abort', () => timeline.push({ id, what: 'stop', at: monotonicNow(), epoch }), { once: true });
      });
      return e;
    };
    const first = make('first', partitioned);
    first.start();
    await waitFor(async () => (first.isLeader ? true : undefined), 5_000);
    const second = make('second', await ready(client()));
    second.start();
    partitioned.disconnect(false); // the leader can no longer renew
    await waitFor(async () => (second.isLeader ? true : undefined), 10_000);
    const stopFirst = timeline.find((t) => t.id === 'first' && t.what === 'stop');
    const startSecond = timeline.find((t) => t.id === 'second' && t.what === 'start');
    expect(stopFirst, "the old leader's work was never interrupted").toBeDefined();
    expect(stopFirst!.at).toBeLessThan(startSecond!.at);
    expect(first.isLeader).toBe(false);
    expect(() => first.assertLeader()).toThrow(/not held/);
    expect(second.epoch).toBeGreaterThan(stopFirst!.epoch);
    await second.stop();
    expect(second.signal.aborted).toBe(true);
    await first.stop();
  });

  it('never has two leaders at once across many handovers, and epochs only grow', async () => {
    const tenures: { id: string; epoch: number; start: number; end?: number }[] = [];
    const elections = Array.from({ length: 4 }, (_, i) => {
      const e = new LeaderElection({ redis: admin, namespace: ns, name: 'churn', timings, id: `n${i}` });
      e.on('elected', ({ epoch, signal }) => {
        const t = { id: `n${i}`, epoch, start: monotonicNow() } as (typeof tenures)[number];
        tenures.push(t);
        signal.addEventListener('abort', () => (t.end = monotonicNow()), { once: true });
      });
      e.start();
      return e;
    });
    // Make the leader step down repeatedly; someone else (or the same one later) takes over each time.
    for (let round = 0; round < 6; round++) {
      const leader = await waitFor(async () => elections.find((e) => e.isLeader), 10_000);
      await leader.stop();
      leader.start();
    }
    await waitFor(async () => (elections.some((e) => e.isLeader) ? true : undefined), 10_000);
    for (const e of elections) await e.stop();
    expect(tenures.length).toBeGreaterThanOrEqual(6);
    const sorted = [...tenures].sort((x, y) => x.start - y.start);
    for (let i = 1; i < sorted.length; i++) {
      expect(sorted[i - 1]!.end, `tenure ${i - 1} never ended`).toBeDefined();
      expect(sorted[i - 1]!.end!).toBeLessThanOrEqual(sorted[i]!.start);
      expect(sorted[i]!.epoch).toBeGreaterThan(sorted[i - 1]!.epoch);
    }
  });

  it('elects one leader per group, independently', async () => {
    const make = (id: string, group: string) => new LeaderElection({ redis: admin, namespace: ns, name: 'indexer', group, timings, id });
    const all = [make('a1', 'a'), make('a2', 'a'), make('b1', 'b'), make('b2', 'b'), make('g1', 'g'), make('g2', 'g')];
    const global = [new LeaderElection({ redis: admin, namespace: ns, name: 'indexer', timings, id: 'x1' }), new LeaderElection({ redis: admin, namespace: ns, name: 'indexer', timings, id: 'x2' })];
    for (const e of [...all, ...global]) e.start();
    await waitFor(async () => (['a', 'b', 'g'].every((g) => all.some((e) => e.isLeader && e.id.startsWith(g))) && global.some((e) => e.isLeader) ? true : undefined), 10_000);
    for (const g of ['a', 'b', 'g']) expect(all.filter((e) => e.id.startsWith(g) && e.isLeader).length).toBe(1);
    expect(global.filter((e) => e.isLeader).length).toBe(1);
    for (const e of [...all, ...global]) await e.stop();
  });
});

describe('membership', () => {
  it('gives each live member its index and the member count, and drops members that stop', async () => {
    const members = ['m-a', 'm-b', 'm-c'].map((id) => new Membership({ redis: admin, namespace: ns, group: 'processors', timings, id }));
    for (const m of members) await m.start();
    await waitFor(async () => (members.every((m) => m.count === 3) ? true : undefined), 5_000);
    expect(members.map((m) => m.index).sort()).toEqual([0, 1, 2]);
    expect(members.map((m) => m.view.members)).toEqual([members[0]!.view.members, members[0]!.view.members, members[0]!.view.members]);
    await members[1]!.stop();
    await waitFor(async () => (members[0]!.count === 2 && members[2]!.count === 2 ? true : undefined), 5_000);
    expect([members[0]!.index, members[2]!.index].sort()).toEqual([0, 1]);
    expect(members[1]!.index).toBe(-1);
    await members[0]!.stop();
    await members[2]!.stop();
  });
});

describe('resource placement: failover (lookup_resource_failovers_total)', () => {
  it('says a grant is a failover only when the key leaves a pinned owner that never released it', async () => {
    const directory = createResourceDirectory({ redis: admin, namespace: ns, ttlMs: 300 });
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    await directory.heartbeat('w1', [], {});
    const first = await directory.place('fo-key');
    expect(first).toMatchObject({ owner: 'w1', granted: true, failover: false });
    expect(await directory.place('fo-key')).toMatchObject({ owner: 'w1', granted: false, failover: false });

    // A clean release removes the pin: placing the key again (on w2) is no failover.
    await directory.heartbeat('w2', [], {});
    expect(await directory.release('w1', 'fo-key', first!.epoch)).toBe(true);
    await sleep(350); // w1's liveness runs out; w2 beats on
    await directory.heartbeat('w2', [], {});
    const moved = await directory.place('fo-key');
    expect(moved).toMatchObject({ owner: 'w2', granted: true, failover: false });

    // w2 dies holding it (no release, its lease and liveness run out): the next grant, to w3, is a failover.
    await sleep(350);
    await directory.heartbeat('w3', [], {});
    expect(await directory.place('fo-key')).toMatchObject({ owner: 'w3', granted: true, failover: true });
  });
});

describe('resource directory: per-worker records without per-worker keys (issue 15)', () => {
  const dirNs = newNamespace('coorddir');
  afterAll(() => cleanupNamespace(dirNs));

  it('balances by pinned keys, lists workers with their keys, drains, moves and prunes', async () => {
    const directory = createResourceDirectory({ redis: admin, namespace: dirNs, ttlMs: 10_000 });
    await directory.heartbeat('wa', [], { host: 'ha', pid: 11, startedAt: '2026-12-01T00:00:00.000Z' });
    await directory.heartbeat('wb', [], { host: 'hb', pid: 12 });
    // Fewest pinned keys first (ties: the smallest id): a, b, a, b.
    const owners = [];
    for (const key of ['k1', 'k2', 'k3', 'k4']) owners.push((await directory.place(key))!.owner);
    expect(owners).toEqual(['wa', 'wb', 'wa', 'wb']);
    let workers = await directory.listWorkers();
    expect(workers).toEqual([
      { id: 'wa', healthy: true, draining: false, lastBeat: expect.any(String), resources: ['k1', 'k3'], host: 'ha', pid: 11, startedAt: '2026-12-01T00:00:00.000Z' },
      { id: 'wb', healthy: true, draining: false, lastBeat: expect.any(String), resources: ['k2', 'k4'], host: 'hb', pid: 12, startedAt: undefined },
    ]);

    // A draining worker takes nothing new, its beat says so, and its leases come back flagged for release.
    expect(await directory.drain('wa')).toBe(2);
    expect(await directory.drain('nobody')).toBeUndefined();
    const k1 = await directory.lease('k1');
    const beat = await directory.heartbeat('wa', [{ key: 'k1', epoch: k1!.epoch }], {});
    expect(beat).toEqual({ draining: true, statuses: ['release'] });
    expect((await directory.place('k5'))!.owner).toBe('wb');
    expect(await directory.requestRelease('k2', 'wa')).toEqual({ status: 'bad-target' });
    expect((await directory.listWorkers()).find((w) => w.id === 'wa')!.draining).toBe(true);

    // wa releases k1: its pin goes with the lease; a move of k2 to a fresh worker is pending until wb releases it.
    expect(await directory.release('wa', 'k1', k1!.epoch)).toBe(true);
    await directory.heartbeat('wc', [], {});
    expect(await directory.requestRelease('k2', 'wc')).toEqual({ status: 'pending', owner: 'wb' });
    const k2 = await directory.lease('k2');
    expect(await directory.release('wb', 'k2', k2!.epoch)).toBe(true);
    expect(await directory.place('k2')).toMatchObject({ owner: 'wc', granted: true, failover: false, epoch: k2!.epoch + 1 });
    workers = await directory.listWorkers();
    expect(Object.fromEntries(workers.map((w) => [w.id, w.resources]))).toEqual({ wa: ['k3'], wb: ['k4', 'k5'], wc: ['k2'] });

    // Unpinning a key without a live lease drops its pin at once.
    const k4 = await directory.lease('k4');
    expect(await directory.release('wb', 'k4', k4!.epoch)).toBe(true);
    expect(await directory.requestRelease('k4')).toEqual({ status: 'not-pinned' });

    // A worker silent past the prune age is forgotten (its record and draining flag too) by the next beat: here a
    // directory pruning after 1 ms, so every worker but the one beating goes.
    await new Promise((r) => setTimeout(r, 20));
    await createResourceDirectory({ redis: admin, namespace: dirNs, ttlMs: 10_000, pruneAfterMs: 1 }).heartbeat('wc', [], {});
    expect((await directory.listWorkers()).map((w) => w.id)).toEqual(['wc']);
    // wa comes back under the same id: not draining any more.
    await directory.heartbeat('wa', [], {});
    expect((await directory.listWorkers()).find((w) => w.id === 'wa')).toMatchObject({ draining: false, resources: ['k3'] });
    await directory.leave('wa');
    await directory.leave('wc');
    expect(await directory.listWorkers()).toEqual([]);
  });
});

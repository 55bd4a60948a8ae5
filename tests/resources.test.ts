// Pinned resources, end to end: real API and resource-worker processes, RabbitMQ and Redis. The seed's
// scenarios (Constellation) plus ours: API restarts keep pins, two API replicas agree, traversal and oversized
// bodies are refused, admin key checks. Failover under SIGKILL/SIGSTOP is in resources-failover.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { coordinationKeys } from '@lookup/coordination';
import type { Redis } from 'ioredis';
import { keysEverywhere, rawRedis } from './support/redis.ts';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';

import { stopService } from './support/processes.ts';
import { admin, rawHttp, resourceEnv, sql, sqlUntilOk, startApi, startWorker, stopAll, type Api, type Worker } from './support/resources.ts';

const ns = newNamespace('res');
const re = resourceEnv(ns);
const apis: Api[] = [];
const workers: Worker[] = [];
let api: Api;
let redis: Redis;

beforeAll(async () => {
  redis = rawRedis();
  api = await startApi(re.env);
  apis.push(api);
});

afterAll(async () => {
  await stopAll([...workers, ...apis]);
  redis?.disconnect();
  await cleanupNamespace(ns);
  re.cleanup();
});

async function addWorker(label: string): Promise<Worker> {
  const w = await startWorker(re.env, label);
  workers.push(w);
  return w;
}

describe('pinned resources', () => {
  it('answers 503 with Retry-After while no resource worker is live', async () => {
    const r = await sql(api.url, 'nobody', 'SELECT 1');
    expect(r.status).toBe(503);
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(r.body.error).toBe('Service unavailable');
  });

  it('pins a key to the one worker, runs SQL, and answers SQL errors with 400 and the message', async () => {
    const w1 = await addWorker('one');
    const created = await sqlUntilOk(api.url, 'customers', 'CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)');
    expect(created.owner).toBe(w1.id);
    expect(created.epoch).toBeGreaterThanOrEqual(1);
    const ins = await sql(api.url, 'customers', 'INSERT INTO customers (name) VALUES (?), (?)', ['Alice', 'Bob']);
    expect(ins.status).toBe(200);
    expect(ins.body.changes).toBe(2);
    const sel = await sql(api.url, 'customers', 'SELECT name FROM customers ORDER BY id');
    expect(sel.status).toBe(200);
    expect(sel.body.rows).toEqual([{ name: 'Alice' }, { name: 'Bob' }]);
    expect(sel.owner).toBe(w1.id);
    expect(sel.epoch).toBe(created.epoch);
    const bad = await sql(api.url, 'customers', 'SELEC * FROM customers');
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ error: 'SQL error', message: expect.stringMatching(/syntax error/), code: 'SQL_ERROR' });
    const missing = await sql(api.url, 'customers', 'SELECT * FROM nope');
    expect(missing.status).toBe(400);
    expect(missing.body.message).toMatch(/no such table/);
  });

  it('spreads keys over many workers (all used), keeps the mapping, and adding a worker moves nothing', async () => {
    await addWorker('two');
    await addWorker('three');
    const keys = Array.from({ length: 9 }, (_, i) => `spread${i}`);
    const owners = new Map<string, string>();
    for (const k of keys) owners.set(k, (await sqlUntilOk(api.url, k, 'SELECT 1 AS one')).owner!);
    expect(new Set(owners.values()).size).toBe(3); // all three used
    const perWorker = new Map<string, number>();
    for (const o of owners.values()) perWorker.set(o, (perWorker.get(o) ?? 0) + 1);
    expect(Math.max(...perWorker.values())).toBeGreaterThan(1); // several resources per worker
    for (const k of keys) for (let i = 0; i < 3; i++) expect((await sql(api.url, k, 'SELECT 1')).owner).toBe(owners.get(k));

    const w4 = await addWorker('four');
    for (const k of keys) expect((await sql(api.url, k, 'SELECT 1')).owner).toBe(owners.get(k));
    // The newcomer has the fewest keys, so it takes the next new one.
    expect((await sqlUntilOk(api.url, 'newcomer', 'SELECT 1')).owner).toBe(w4.id);
  });

  it('sends concurrent requests for one key to one worker, and loses none of them', async () => {
    await sqlUntilOk(api.url, 'busy', 'CREATE TABLE log (id INTEGER PRIMARY KEY AUTOINCREMENT, v INTEGER)');
    // Each retried through 503/504, the answers a client retries (on a loaded machine a commit stopped at its fencing
    // budget answers 503, its outcome unknown: a CI run got one), and written so that a retry of an insert that did
    // commit adds nothing.
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) => sqlUntilOk(api.url, 'busy', 'INSERT INTO log (v) SELECT ? WHERE NOT EXISTS (SELECT 1 FROM log WHERE v = ?) RETURNING id', [i, i])),
    );
    expect(new Set(answers.map((a) => a.owner)).size).toBe(1);
    // Every insert that returned its row got its own id (a retry of one that had committed returns none).
    const ids = answers.flatMap((a) => (a.body.rows as { id: number }[]).map((r) => r.id));
    expect(new Set(ids).size).toBe(ids.length);
    const all = await sql(api.url, 'busy', 'SELECT count(*) AS n, count(DISTINCT v) AS d FROM log');
    expect(all.body.rows[0]).toEqual({ n: 30, d: 30 });
  });

  it('remaps a key when its owner dies, with a higher epoch, and then keeps it there', async () => {
    const first = await sqlUntilOk(api.url, 'orphan', 'CREATE TABLE t (v TEXT)');
    // Retried until answered (a loaded machine can time a request out), and written so that a retry of an insert
    // that did commit adds nothing.
    const inserted = await sqlUntilOk(api.url, 'orphan', "INSERT INTO t SELECT 'kept' WHERE NOT EXISTS (SELECT 1 FROM t)");
    expect(inserted.owner).toBe(first.owner);
    const owner = workers.find((w) => w.id === first.owner)!;
    owner.process.child.kill('SIGKILL');
    await owner.process.exited;
    const after = await sqlUntilOk(api.url, 'orphan', 'SELECT v FROM t');
    expect(after.owner).not.toBe(owner.id);
    expect(after.epoch).toBeGreaterThan(first.epoch!);
    expect(after.body.rows).toEqual([{ v: 'kept' }]);
    for (let i = 0; i < 5; i++) {
      const again = await sql(api.url, 'orphan', 'SELECT v FROM t');
      expect(again.owner).toBe(after.owner);
      expect(again.epoch).toBe(after.epoch);
    }
  });

  it('keeps pins across an API restart (placement lives in Redis)', async () => {
    const before = await sqlUntilOk(api.url, 'durable', 'SELECT 1');
    await stopService(api.process);
    apis.splice(apis.indexOf(api), 1);
    api = await startApi(re.env, api.port);
    apis.push(api);
    const after = await sqlUntilOk(api.url, 'durable', 'SELECT 1');
    expect(after.owner).toBe(before.owner);
    expect(after.epoch).toBe(before.epoch);
  });

  it('routes a key to the same owner from two API replicas', async () => {
    const replica = await startApi(re.env);
    apis.push(replica);
    for (let i = 0; i < 6; i++) {
      // Both replicas ask for a new key at the same moment: one placement wins, both use it.
      const [a, b] = await Promise.all([sqlUntilOk(api.url, `shared${i}`, 'SELECT 1'), sqlUntilOk(replica.url, `shared${i}`, 'SELECT 1')]);
      expect(a.owner).toBe(b.owner);
      expect(a.epoch).toBe(b.epoch);
    }
  });

  it('refuses path traversal, bad keys and oversized bodies', async () => {
    const bad = [
      '/api/resources/db/../etc/passwd',
      '/api/resources/db/%2e%2e/x',
      '/api/resources/db/./x',
      '/api/resources/db//x',
      '/api/resources/db/a%00b',
      '/api/resources/db/a%0Ab',
      '/api/resources/',
    ];
    for (const p of bad) {
      const r = await rawHttp(api.port, 'POST', p, '{"query":"SELECT 1"}', { 'content-type': 'application/json' });
      expect(r.status, p).toBe(400);
      expect(JSON.parse(r.body).error, p).toBe('Invalid resource key');
    }
    // Malformed percent-encoding is refused by the router itself, before any key is read.
    expect((await rawHttp(api.port, 'POST', '/api/resources/db/%E0%A4%A', '{}', { 'content-type': 'application/json' })).status).toBe(400);
    const big = JSON.stringify({ query: `SELECT '${'x'.repeat(5000)}'` });
    const r = await rawHttp(api.port, 'POST', '/api/resources/db/big', big, { 'content-type': 'application/json' });
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body).message).toContain('4096');
    // A name the SQLite worker does not serve is its 404, not a file outside the data directory.
    const odd = await rawHttp(api.port, 'POST', '/api/resources/db/..hidden', '{"query":"SELECT 1"}', { 'content-type': 'application/json' });
    expect(odd.status).toBe(404);
  });

  it('guards the admin endpoints with the admin key', async () => {
    expect((await admin(api.url, 'GET', '/workers', undefined, null)).status).toBe(401);
    expect((await admin(api.url, 'GET', '/workers', undefined, 'wrong')).status).toBe(401);
    expect((await admin(api.url, 'GET', '/pins', undefined, 'wrong')).status).toBe(401);
    expect((await admin(api.url, 'POST', '/unpin', { key: 'db/durable' }, null)).status).toBe(401);
    const list = await admin(api.url, 'GET', '/workers');
    expect(list.status).toBe(200);
    const dead = list.body.workers.filter((w: { healthy: boolean }) => !w.healthy);
    expect(dead.length).toBe(1); // the one killed above
    expect(list.body.workers.filter((w: { healthy: boolean }) => w.healthy).length).toBe(3);
    const pins = await admin(api.url, 'GET', '/pins');
    expect(pins.status).toBe(200);
    expect(pins.body.pins.map((p: { key: string }) => p.key)).toContain('db/customers');
  });

  it('moves, unpins and drains through the admin endpoints', async () => {
    const before = await sqlUntilOk(api.url, 'movable', 'CREATE TABLE m (v INTEGER)');
    await sql(api.url, 'movable', 'INSERT INTO m VALUES (42)');
    const live = workers.filter((w) => w.process.child.exitCode === null && w.process.child.signalCode === null);
    const target = live.find((w) => w.id !== before.owner)!;
    const moved = await admin(api.url, 'POST', '/move', { key: 'db/movable', to: target.id });
    expect(moved.status).toBe(200);
    expect(moved.body.owner).toBe(target.id);
    const after = await sqlUntilOk(api.url, 'movable', 'SELECT v FROM m');
    expect(after.owner).toBe(target.id);
    expect(after.epoch).toBeGreaterThan(before.epoch!);
    expect(after.body.rows).toEqual([{ v: 42 }]);

    const unpinned = await admin(api.url, 'POST', '/unpin', { key: 'db/movable' });
    expect(unpinned.status).toBe(200);
    const pins = await admin(api.url, 'GET', '/pins');
    expect(pins.body.pins.map((p: { key: string }) => p.key)).not.toContain('db/movable');
    const notPinned = await admin(api.url, 'POST', '/unpin', { key: 'db/never-seen' });
    expect(notPinned.status).toBe(404);
    expect(notPinned.body).toEqual({
      error: 'Key not pinned',
      message: "'db/never-seen' is not pinned",
      code: 'NOT_PINNED',
      details: { key: 'db/never-seen', status: 'not-pinned' },
    });

    // Drain the owner of 'durable': its keys move, and it takes no new ones.
    const d = await sqlUntilOk(api.url, 'durable', 'SELECT 1');
    const drained = await admin(api.url, 'POST', `/workers/${encodeURIComponent(d.owner!)}/drain`);
    expect(drained.status).toBe(202);
    const moved2 = await sqlUntilOk(api.url, 'durable', 'SELECT 1');
    // The drained worker releases on its next heartbeat; until then it may still answer.
    const settled = await (async () => {
      for (let i = 0; i < 100; i++) {
        const r = await sqlUntilOk(api.url, 'durable', 'SELECT 1');
        if (r.owner !== d.owner) return r;
        await new Promise((res) => setTimeout(res, 100));
      }
      return moved2;
    })();
    expect(settled.owner).not.toBe(d.owner);
    for (let i = 0; i < 5; i++) expect((await sqlUntilOk(api.url, `after-drain${i}`, 'SELECT 1')).owner).not.toBe(d.owner);
    const listed = await admin(api.url, 'GET', '/workers');
    expect(listed.body.workers.find((w: { id: string }) => w.id === d.owner).draining).toBe(true);
    const unknownWorker = await admin(api.url, 'POST', '/workers/nope/drain');
    expect(unknownWorker.status).toBe(404);
    expect(unknownWorker.body).toMatchObject({ error: 'Unknown worker', code: 'UNKNOWN_WORKER', details: { worker: 'nope' } });
  });

  it('keeps every key and queue name under the namespace', async () => {
    const foreign = (await keysEverywhere(redis, '*')).filter((k) => k.includes(':res:') && k.includes('movable') && !k.startsWith(`${ns}:`));
    expect(foreign).toEqual([]);
    expect((await redis.hlen(coordinationKeys(ns).resourcePins))).toBeGreaterThan(0);
  });
});

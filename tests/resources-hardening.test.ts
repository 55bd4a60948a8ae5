// Pinned resources in front of strangers (issue 10, findings 4, 5 and 12), against real API and resource-worker
// processes: a slow statement is interrupted for its own request only; refused requests pin nothing; idle keys are
// released; the open cap holds; a key's SQL reaches only its own database.
import { readdirSync } from 'node:fs';
import { coordinationKeys, createResourceDirectory } from '@lookup/coordination';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { rawRedis } from './support/redis.ts';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';

import { waitFor } from './support/processes.ts';
import { rawHttp, resourceEnv, sql, sqlUntilOk, startApi, startWorker, stopAll, type Api, type ResourceEnv, type Worker } from './support/resources.ts';

/** Counts forever: only the statement limit stops it. */
const ENDLESS = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) AS n FROM c';

let redis: Redis;
beforeAll(() => {
  redis = rawRedis();
});
afterAll(() => redis?.disconnect());

/** The keys the directory lists for a worker (the admin view: the pins naming it). */
async function ownedBy(ns: string, workerId: string): Promise<string[]> {
  const workers = await createResourceDirectory({ redis, namespace: ns, ttlMs: 6000 }).listWorkers();
  return workers.find((w) => w.id === workerId)?.resources ?? [];
}

/** What Redis says about a key: its lease holder, its pin, and whether the directory lists it among the worker's. */
async function pinState(ns: string, key: string, workerId: string) {
  const [holder, pin, owned] = await Promise.all([
    redis.hget(coordinationKeys(ns).resourceLease(key), 'holder'),
    redis.hget(coordinationKeys(ns).resourcePins, key),
    ownedBy(ns, workerId),
  ]);
  return { holder, pin, owned: owned.includes(key) };
}
const UNPINNED = { holder: null, pin: null, owned: false };

function suite(label: string, extra: Record<string, string>) {
  const ns = newNamespace(label);
  const re: ResourceEnv = resourceEnv(ns, extra);
  const state: { api?: Api; worker?: Worker } = {};
  beforeAll(async () => {
    state.api = await startApi(re.env);
    state.worker = await startWorker(re.env, label);
  });
  afterAll(async () => {
    await stopAll([state.worker, state.api].filter((x): x is Api | Worker => x !== undefined));
    await cleanupNamespace(ns);
    re.cleanup();
  });
  return { ns, re, get api() { return state.api!; }, get worker() { return state.worker!; } };
}

describe('a slow statement (finding 4)', () => {
  // The limit (2 s) is longer than the lease (250 ms x 4 = 1 s): a worker whose main thread ran the statement
  // would miss its heartbeats, and its keys would move to a new epoch.
  const s = suite('resslow', { RESOURCE_STATEMENT_TIMEOUT_MS: '2000', RESOURCE_PROXY_TIMEOUT_MS: '15000' });

  it('is interrupted at the limit (504) while other keys answer and the worker keeps its leases', async () => {
    const other = await sqlUntilOk(s.api.url, 'otherkey', 'CREATE TABLE t (v); INSERT INTO t VALUES (1)');
    await sqlUntilOk(s.api.url, 'slowkey', "CREATE TABLE s (v); INSERT INTO s VALUES ('kept')");
    let slowDone = false;
    const slow = sql(s.api.url, 'slowkey', `INSERT INTO s VALUES ('lost'); ${ENDLESS}`).finally(() => (slowDone = true));
    const meanwhile: { status: number; owner?: string; epoch?: number }[] = [];
    while (!slowDone) {
      const r = await sql(s.api.url, 'otherkey', 'SELECT v FROM t');
      if (!slowDone) meanwhile.push({ status: r.status, owner: r.owner, epoch: r.epoch });
    }
    const answer = await slow;
    expect(answer.status).toBe(504);
    expect(answer.body.error).toBe('Statement timeout'); // the worker's answer, not the API's proxy timeout
    expect(answer.body.message).toMatch(/RESOURCE_STATEMENT_TIMEOUT_MS/);
    expect(answer.body).toMatchObject({ code: 'STATEMENT_TIMEOUT', details: { timeoutMs: expect.any(Number) } });
    expect(answer.owner).toBe(s.worker.id);
    // Another key answered while the statement ran, from the same worker under the same epoch: no failover.
    expect(meanwhile.length).toBeGreaterThan(0);
    for (const m of meanwhile) expect(m).toEqual({ status: 200, owner: s.worker.id, epoch: other.epoch });
    expect(await redis.hget(coordinationKeys(s.ns).resourceLease('db/otherkey'), 'epoch')).toBe(String(other.epoch));
    // The interrupted request kept nothing; the key works again, reopened from its file.
    const after = await sql(s.api.url, 'slowkey', 'SELECT v FROM s');
    expect(after.status).toBe(200);
    expect(after.body.rows).toEqual([{ v: 'kept' }]);
    expect((await sql(s.api.url, 'otherkey', 'SELECT v FROM t')).epoch).toBe(other.epoch);
  });
});

describe('pinning, idle release and the open cap (finding 5)', () => {
  const s = suite('respin', { RESOURCE_IDLE_MS: '1500', RESOURCE_MAX_OPEN: '2', RESOURCE_STATEMENT_TIMEOUT_MS: '3000', RESOURCE_PROXY_TIMEOUT_MS: '15000' });

  it('pins nothing and opens nothing for a request the worker refuses (404, 405, 400, 415, 403)', async () => {
    // A worker must be registered before anything is placed.
    await sqlUntilOk(s.api.url, 'warmup', 'SELECT 1');
    const json = { 'content-type': 'application/json' };
    const refused: [string, string, string | undefined, Record<string, string>, number][] = [
      ['GET', 'db/refused405', undefined, {}, 405],
      ['POST', 'other/refused404', '{"query":"SELECT 1"}', json, 404],
      ['POST', 'db/refused400', '{"query":', json, 400],
      ['POST', 'db/refused415', '{"query":"SELECT 1"}', { 'content-type': 'text/plain' }, 415],
      ['POST', 'db/refused403', `{"query":"ATTACH '/tmp/shared.db' AS s"}`, json, 403],
    ];
    for (const [method, key, body, headers, status] of refused) {
      const r = await rawHttp(s.api.port, method, `/api/resources/${key}`, body, headers);
      expect(r.status, `${method} ${key}: ${r.body}`).toBe(status);
      // The worker's refusal through the proxy: the one error body, a stable code, nothing else.
      const answer = JSON.parse(r.body) as Record<string, unknown>;
      expect(Object.keys(answer).filter((k) => !['error', 'message', 'code', 'details'].includes(k)), key).toEqual([]);
      expect(answer, key).toMatchObject({ error: expect.any(String), message: expect.any(String), code: expect.stringMatching(/^[A-Z_]+$/) });
      expect(await pinState(s.ns, key, s.worker.id), key).toEqual(UNPINNED);
    }
    const files = readdirSync(path.join(s.re.dataDir, 'db'));
    expect(files.filter((f) => f.startsWith('refused'))).toEqual([]);
  });

  it('closes a key idle for RESOURCE_IDLE_MS and releases its lease; the next request places it afresh', async () => {
    const first = await sqlUntilOk(s.api.url, 'idle1', "CREATE TABLE t (v); INSERT INTO t VALUES ('still here')");
    expect(await pinState(s.ns, 'db/idle1', s.worker.id)).toEqual({ holder: s.worker.id, pin: s.worker.id, owned: true });
    await waitFor(async () => ((await pinState(s.ns, 'db/idle1', s.worker.id)).pin === null ? true : undefined), 20_000);
    expect(await pinState(s.ns, 'db/idle1', s.worker.id)).toEqual(UNPINNED);
    // The worker logs the release after releasing the lease, and its output is read asynchronously: wait for the line.
    const released = (l: string) => l.includes('resource released') && l.includes('db/idle1') && l.includes('RESOURCE_IDLE_MS');
    await waitFor(async () => (s.worker.process.lines.some(released) ? true : undefined), 5_000).catch(() => undefined);
    expect(s.worker.process.lines.some(released)).toBe(true);
    const again = await sqlUntilOk(s.api.url, 'idle1', 'SELECT v FROM t');
    expect(again.body.rows).toEqual([{ v: 'still here' }]);
    expect(again.epoch).toBeGreaterThan(first.epoch!);
  });

  it('keeps at most RESOURCE_MAX_OPEN keys open: evicts the least recently used idle key, or answers 503 when all are busy', async () => {
    const owned = () => ownedBy(s.ns, s.worker.id);
    for (const k of ['cap1', 'cap2', 'cap3']) await sqlUntilOk(s.api.url, k, 'SELECT 1');
    const held = await owned();
    expect(held.length).toBeLessThanOrEqual(2);
    expect(held).toContain('db/cap3');
    expect(held).not.toContain('db/cap1'); // the least recently used one went first
    // Two keys busy with endless statements: a third key finds no idle one to evict.
    const busy = ['busy1', 'busy2'].map((k) => sql(s.api.url, k, ENDLESS));
    await waitFor(async () => ((await Promise.all(['db/busy1', 'db/busy2'].map((k) => redis.hget(coordinationKeys(s.ns).resourceLease(k), 'holder')))).every((h) => h === s.worker.id) ? true : undefined));
    await waitFor(async () => (s.worker.process.lines.filter((l) => l.includes('resource opened') && /db\/busy[12]/.test(l)).length === 2 ? true : undefined));
    const full = await sql(s.api.url, 'cap4', 'SELECT 1');
    expect(full.status).toBe(503);
    expect(full.body.error).toBe('Too many open resources');
    expect(full.body.message).toMatch(/RESOURCE_MAX_OPEN/);
    expect(full.body).toMatchObject({ code: 'TOO_MANY_OPEN_RESOURCES', details: { maxOpen: expect.any(Number) } });
    expect(Number(full.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await pinState(s.ns, 'db/cap4', s.worker.id)).toEqual(UNPINNED);
    expect((await Promise.all(busy)).map((r) => r.status)).toEqual([504, 504]);
    // Once they are idle again, new keys get room.
    expect((await sqlUntilOk(s.api.url, 'cap4', 'SELECT 1')).status).toBe(200);
  });
});

describe('the SQLite sandbox (finding 12)', () => {
  const s = suite('ressand', {});

  it("refuses what reaches outside a key's database, naming the rule, and keys share no filesystem", async () => {
    await sqlUntilOk(s.api.url, 'keya', "CREATE TABLE t (v); INSERT INTO t VALUES ('a')");
    const refusals: [string, string][] = [
      ["ATTACH '/tmp/shared.db' AS s", 'ATTACH'],
      ["/*x*/ATTACH ':memory:' AS m", 'ATTACH'],
      ['DETACH s', 'DETACH'],
      ["VACUUM INTO '/tmp/shared.db'", 'VACUUM INTO'],
      ["SELECT load_extension('/tmp/x.so')", 'load_extension'],
      ['PRAGMA writable_schema = ON', 'PRAGMA writable_schema'],
      ['PRAGMA journal_mode = OFF', 'PRAGMA journal_mode'],
    ];
    for (const [query, rule] of refusals) {
      const r = await sql(s.api.url, 'keya', query);
      expect(r.status, query).toBe(403);
      // The one error body: the rule in details, the stable code for every rule.
      expect(r.body, query).toEqual({ error: 'Statement not allowed', message: expect.any(String), code: 'STATEMENT_NOT_ALLOWED', details: { rule } });
    }
    // Literals and comments may say anything; allowed pragmas work.
    expect((await sql(s.api.url, 'keya', "SELECT 'attach' AS w /* VACUUM INTO */")).body.rows).toEqual([{ w: 'attach' }]);
    expect((await sql(s.api.url, 'keya', 'PRAGMA table_info(t)')).body.rows[0]).toMatchObject({ name: 'v' });
    // Key B sees no file key A could have made: its ATTACH is refused too, and its own database holds only its own.
    expect((await sql(s.api.url, 'keyb', "ATTACH '/tmp/shared.db' AS s")).status).toBe(403);
    const b = await sqlUntilOk(s.api.url, 'keyb', "SELECT name FROM sqlite_schema UNION ALL SELECT name FROM pragma_database_list WHERE name NOT IN ('main', 'temp')");
    expect(b.body.rows).toEqual([]);
  });
});

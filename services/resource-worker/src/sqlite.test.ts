import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@lookup/config';
import { createLogger } from '@lookup/logging';
import type { ResourceContext, ResourceRequest } from '@lookup/resource-kit';
import { begin, execute, isVacuumAlone, splitStatements } from './sql-engine.ts';
import { createSqliteType, databaseName, DatabaseChild, MAIN_THREAD_CHECK_MAX, parseQueryBody, runQuery } from './sqlite.ts';

describe('sqlite resource type', () => {
  it('maps db/<name> keys to database names and refuses anything else', () => {
    expect(databaseName('db/customers')).toBe('customers');
    for (const k of ['db', 'db/a/b', 'db/..', 'db/.hidden', 'other/x', 'db/a..b']) expect(() => databaseName(k), k).toThrow(/No such resource/);
  });

  it('parses {query, params} and refuses anything else with a message', () => {
    const req = (body: string, type = 'application/json') => ({ body: Buffer.from(body), headers: { 'content-type': type } });
    expect(parseQueryBody(req('{"query":"SELECT ?","params":[1,true,null,"x"]}'))).toEqual({ query: 'SELECT ?', params: [1, 1, null, 'x'] });
    expect(parseQueryBody(req('{"query":"SELECT :a","params":{"a":2}}'))).toEqual({ query: 'SELECT :a', params: { ':a': 2 } });
    expect(() => parseQueryBody(req('nope'))).toThrow(/not valid JSON/);
    expect(() => parseQueryBody(req('{"query":""}'))).toThrow(/non-empty/);
    expect(() => parseQueryBody(req('{"query":"x","extra":1}'))).toThrow(/Unknown field/);
    expect(() => parseQueryBody(req('{"query":"x","params":[{}]}'))).toThrow(/params\[0\]/);
    expect(() => parseQueryBody(req('{"query":"x"}', 'text/plain'))).toThrow(/application\/json/);
  });

  it('runs several statements, returns the last rows and counts changes', () => {
    const db = new Database(':memory:');
    const r = runQuery(db, { query: 'CREATE TABLE t (a, b); INSERT INTO t VALUES (1, 2), (3, 4); SELECT * FROM t ORDER BY a' });
    expect(r).toEqual({ columns: ['a', 'b'], rows: [{ a: 1, b: 2 }, { a: 3, b: 4 }], changes: 2 });
    expect(runQuery(db, { query: 'SELECT a FROM t WHERE b = ?', params: [4] }).rows).toEqual([{ a: 3 }]);
    expect(runQuery(db, { query: 'SELECT 1' }).changes).toBe(0);
    expect(() => runQuery(db, { query: 'SELECT 1; SELECT 2', params: [1] })).toThrow();
    expect(() => runQuery(db, { query: 'SELEC 1' })).toThrow(/syntax error/);
    db.close();
  });

  it('splits at the semicolons SQLite sees, keeps a trigger body whole, and maps a client transaction onto a savepoint', () => {
    expect(splitStatements("SELECT ';'; -- ;\nSELECT 2;").filter((p) => !p.empty).map((p) => p.first)).toEqual(['SELECT', 'SELECT']);
    expect(isVacuumAlone('VACUUM;')).toBe(true);
    expect(isVacuumAlone('VACUUM; SELECT 1')).toBe(false);
    const db = new Database(':memory:');
    const request = (query: string) => {
      begin(db);
      const outcome = execute(db, { query });
      if (db.inTransaction) db.exec('COMMIT');
      return outcome;
    };
    const trigger = request('CREATE TABLE t (v); CREATE TABLE log (v); CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new.v); INSERT INTO log VALUES (-new.v); END; INSERT INTO t VALUES (5); SELECT v FROM log ORDER BY v');
    expect(trigger.result?.rows).toEqual([{ v: -5 }, { v: 5 }]);
    expect(request('BEGIN; INSERT INTO t VALUES (6); COMMIT; SELECT count(*) AS n FROM t').result?.rows).toEqual([{ n: 2 }]);
    expect(request('BEGIN; INSERT INTO t VALUES (7); ROLLBACK; SELECT count(*) AS n FROM t').result?.rows).toEqual([{ n: 2 }]);
    // Left open: rolled back, the statements before BEGIN kept.
    expect(request('INSERT INTO t VALUES (8); BEGIN; INSERT INTO t VALUES (9)').failure).toMatchObject({ status: 400, code: 'TRANSACTION_LEFT_OPEN' });
    // A failing statement: the ones before it stay applied, as in autocommit mode.
    expect(request('INSERT INTO t VALUES (10); INSERT INTO nope VALUES (1)').failure).toMatchObject({ status: 400, code: 'SQL_ERROR', message: 'no such table: nope' });
    expect(request('SELECT group_concat(v) AS vs FROM (SELECT v FROM t ORDER BY v)').result?.rows).toEqual([{ vs: '5,6,8,10' }]);
    // Whether there is anything to commit: reads are not, header pragmas are.
    begin(db);
    expect(execute(db, { query: 'SELECT * FROM t' }).changed).toBe(false);
    expect(execute(db, { query: 'PRAGMA application_id = 7' }).changed).toBe(true);
    db.exec('COMMIT');
    expect(db.pragma('application_id', { simple: true })).toBe(7);
    db.close();
  });
});

const logger = createLogger({ service: 'test', level: 'silent' });
const config = loadConfig({});

function context(key: string, owner: { held: boolean } = { held: true }, controller = new AbortController()): ResourceContext {
  return {
    key,
    epoch: 1,
    signal: controller.signal,
    assertOwner: () => {
      if (!owner.held || controller.signal.aborted) throw Object.assign(new Error('lease lost'), { code: 'LEASE_NOT_HELD' });
    },
    logger,
    config,
  };
}

let requests = 0;
const post = (key: string, query: string, params?: unknown[]): ResourceRequest => ({
  requestId: `r${++requests}`,
  key,
  epoch: 1,
  method: 'POST',
  query: '',
  headers: { 'content-type': 'application/json' },
  body: Buffer.from(JSON.stringify(params === undefined ? { query } : { query, params })),
});

const SLOW = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c';

describe('sqlite resource type: one database process per key', async () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'sqlite-type-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));
  const type = createSqliteType({ dataDir, statementTimeoutMs: 300 });
  await type.setup!({ config, logger });
  const run = async (resource: Awaited<ReturnType<typeof type.open>>, ctx: ResourceContext, query: string, params?: unknown[]) => {
    const request = post(ctx.key, query, params);
    await type.accept!(request, { key: ctx.key, logger, config });
    return type.handle(request, resource, ctx);
  };

  it('interrupts a statement at the time limit (504) without blocking this process, and reopens at the last commit', async () => {
    const ctx = context('db/slow');
    const db = await type.open('db/slow', ctx);
    await run(db, ctx, 'CREATE TABLE t (v); INSERT INTO t VALUES (1)');
    let ticks = 0;
    const timer = setInterval(() => (ticks += 1), 10);
    const slow = await run(db, ctx, `INSERT INTO t VALUES (2); ${SLOW}`).then(
      () => undefined,
      (err) => err,
    );
    clearInterval(timer);
    expect(slow).toMatchObject({ status: 504, body: { error: 'Statement timeout', code: 'STATEMENT_TIMEOUT', details: { timeoutMs: expect.any(Number) } } });
    expect(slow.body.message).toMatch(/RESOURCE_STATEMENT_TIMEOUT_MS/);
    expect(ticks).toBeGreaterThan(0); // the main thread ran timers while the statement ran
    // The interrupted request's insert was never committed; the key works again, from its file.
    expect(await run(db, ctx, 'SELECT v FROM t ORDER BY v')).toMatchObject({ status: 200, body: { rows: [{ v: 1 }] } });
    await type.close(db, { key: 'db/slow', epoch: 1, reason: 'test', logger });
  });

  it('keeps a real on-disk SQLite database per key, in rollback-journal mode, readable by any SQLite', async () => {
    const ctx = context('db/ondisk');
    const db = await type.open('db/ondisk', ctx);
    await run(db, ctx, 'CREATE TABLE t (v TEXT)');
    await run(db, ctx, 'INSERT INTO t VALUES (?)', ['written']);
    const file = path.join(dataDir, 'db', 'ondisk.sqlite');
    // The write is in the file already, while the key is still open: no in-memory copy waiting to be exported.
    expect(readFileSync(file).subarray(0, 16).toString('latin1')).toBe('SQLite format 3\0');
    const reader = new Database(file, { readonly: true, fileMustExist: true });
    try {
      expect(reader.prepare('SELECT v FROM t').all()).toEqual([{ v: 'written' }]);
      expect(reader.pragma('journal_mode', { simple: true })).toBe('delete');
    } finally {
      reader.close();
    }
    expect(existsSync(`${file}-wal`)).toBe(false);
    await type.close(db, { key: 'db/ondisk', epoch: 1, reason: 'test', logger });
  });

  it('keeps keys apart in their own processes, and below the sandbox SQLite itself refuses extensions and schema writes', async () => {
    const a = new DatabaseChild().open(path.join(dataDir, 'db', 'none-a.sqlite'), 1000, 5000);
    const b = new DatabaseChild().open(path.join(dataDir, 'db', 'none-b.sqlite'), 1000, 5000);
    await Promise.all([a.ready, b.ready]);
    expect(a.pid).not.toBe(b.pid);
    const options = { beforeCommit: () => undefined, commitBudgetMs: 1000 };
    const wa = await a.run({ query: "CREATE TABLE s (v); INSERT INTO s VALUES ('secret')" }, false, options);
    expect(wa.committed).toBe(true);
    const other = await b.run({ query: 'SELECT v FROM s' }, false, options);
    expect(other.outcome.failure?.message).toMatch(/no such table: s/);
    // Not checked by the sandbox here (check = false): load_extension() is off, defensive mode guards the schema.
    const ext = await a.run({ query: "SELECT load_extension('/tmp/x.so')" }, false, options);
    expect(ext.outcome.failure?.message).toMatch(/not authorized/);
    const schema = await a.run({ query: 'PRAGMA writable_schema = 1; DELETE FROM sqlite_schema' }, false, options);
    expect(schema.outcome.failure?.message).toMatch(/may not be modified/);
    expect((await a.run({ query: 'SELECT v FROM s' }, false, options)).outcome.result?.rows).toEqual([{ v: 'secret' }]);
    await Promise.all([a.kill(), b.kill()]);
  });

  it('a database process whose request outlives its limit kills itself (its worker frozen or gone)', async () => {
    const child = new DatabaseChild().open(path.join(dataDir, 'db', 'watchdog.sqlite'), 1000, 400);
    await child.ready;
    // No time limit on this side, as if the worker were frozen: the child's own watchdog ends the statement.
    const started = Date.now();
    await expect(child.run({ query: SLOW }, false, { beforeCommit: () => undefined, commitBudgetMs: 100 })).rejects.toThrow(/SIGKILL/);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(child.alive).toBe(false);
  });

  it('a write killed mid-transaction, after SQLite spilled pages into the file, leaves the last committed state', async () => {
    const big = createSqliteType({ dataDir, statementTimeoutMs: 3_000 });
    await big.setup!({ config, logger });
    const ctx = context('db/hot');
    const db = await big.open('db/hot', ctx);
    const go = async (query: string) => {
      const request = post('db/hot', query);
      await big.accept!(request, { key: 'db/hot', logger, config });
      return big.handle(request, db, ctx);
    };
    await go('CREATE TABLE t (v); INSERT INTO t VALUES (1)');
    // 24 MB of changes: more than the page cache (16 MB), so SQLite writes pages into the file before COMMIT.
    const spill = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 24000) INSERT INTO t SELECT randomblob(1000) FROM c';
    const file = path.join(dataDir, 'db', 'hot.sqlite');
    const killed = await go(`${spill}; ${SLOW}`).then(() => undefined, (err) => err);
    expect(killed).toMatchObject({ status: 504 });
    expect(existsSync(`${file}-journal`)).toBe(true); // the hot journal the killed process left
    expect(await go('SELECT count(*) AS n FROM t')).toMatchObject({ status: 200, body: { rows: [{ n: 1 }] } });
    expect(existsSync(`${file}-journal`)).toBe(false); // rolled back by the next process's first read
    expect(await go('PRAGMA integrity_check')).toMatchObject({ body: { rows: [{ integrity_check: 'ok' }] } });
    await big.close(db, { key: 'db/hot', epoch: 1, reason: 'test', logger });
  });

  it('never commits a write once the lease is lost: the check comes right before COMMIT', async () => {
    const owner = { held: true };
    const ctx = context('db/fenced', owner);
    const db = await type.open('db/fenced', ctx);
    await run(db, ctx, 'CREATE TABLE t (v); INSERT INTO t VALUES (1)');
    const file = path.join(dataDir, 'db', 'fenced.sqlite');
    const before = readFileSync(file);
    owner.held = false;
    await expect(run(db, ctx, 'INSERT INTO t VALUES (2)')).rejects.toMatchObject({ code: 'LEASE_NOT_HELD' });
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(readdirSync(path.dirname(file)).filter((f) => f.includes('fenced'))).toEqual(['fenced.sqlite']);
    owner.held = true;
    expect(await run(db, ctx, 'SELECT count(*) AS n FROM t')).toMatchObject({ body: { rows: [{ n: 1 }] } });
    await type.close(db, { key: 'db/fenced', epoch: 1, reason: 'test', logger });
  });

  it('stops the statement of an abandoned request', async () => {
    const controller = new AbortController();
    const ctx = context('db/abandoned', { held: true }, controller);
    const db = await type.open('db/abandoned', ctx);
    const pending = run(db, ctx, SLOW);
    setTimeout(() => controller.abort(new Error('cancelled')), 50);
    await expect(pending).rejects.toMatchObject({ code: 'LEASE_NOT_HELD' });
    expect(db.child).toBeUndefined();
    await type.close(db, { key: 'db/abandoned', epoch: 1, reason: 'test', logger });
  });

  it('refuses bad keys, methods, bodies and sandboxed statements before anything is opened', async () => {
    const accept = (r: ResourceRequest) => type.accept!(r, { key: r.key, logger, config });
    expect(() => accept(post('db/..x', 'SELECT 1'))).toThrow(/No such resource/);
    expect(() => accept({ ...post('db/x', 'SELECT 1'), method: 'GET' })).toThrow(expect.objectContaining({ status: 405 }));
    expect(() => accept({ ...post('db/x', 'SELECT 1'), body: Buffer.from('{') })).toThrow(expect.objectContaining({ status: 400 }));
    for (const q of ["ATTACH '/tmp/shared.db' AS s", 'DETACH s', "VACUUM INTO '/tmp/x'", "SELECT load_extension('x')", 'PRAGMA writable_schema = 1']) {
      expect(() => accept(post('db/x', q)), q).toThrow(
        expect.objectContaining({ status: 403, body: expect.objectContaining({ error: 'Statement not allowed', code: 'STATEMENT_NOT_ALLOWED', details: { rule: expect.any(String) } }) }),
      );
    }
    expect(existsSync(path.join(dataDir, 'db', 'x.sqlite'))).toBe(false);
  });

  it('checks a large query in its database process instead, before it runs', async () => {
    const ctx = context('db/large');
    const db = await type.open('db/large', ctx);
    const filler = `SELECT '${'x'.repeat(MAIN_THREAD_CHECK_MAX)}';`;
    await expect(run(db, ctx, `${filler} ATTACH '/tmp/shared.db' AS s`)).rejects.toMatchObject({ status: 403, body: { code: 'STATEMENT_NOT_ALLOWED', details: { rule: 'ATTACH' } } });
    expect(await run(db, ctx, `${filler} SELECT 2 AS two`)).toMatchObject({ status: 200, body: { rows: [{ two: 2 }] } });
    await type.close(db, { key: 'db/large', epoch: 1, reason: 'test', logger });
  });
});


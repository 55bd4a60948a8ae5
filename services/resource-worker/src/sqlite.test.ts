import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import initSqlJs from 'sql.js';
import { afterAll, describe, expect, it } from 'vitest';
import { databaseName, parseQueryBody, runQuery, writeFileAtomic } from './sqlite.ts';

const SQL = await initSqlJs();
const dir = mkdtempSync(path.join(tmpdir(), 'sqlite-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sqlite resource type', () => {
  it('maps db/<name> keys to database names and refuses anything else', () => {
    expect(databaseName('db/customers')).toBe('customers');
    for (const k of ['db', 'db/a/b', 'db/..', 'db/.hidden', 'other/x', 'db/a..b']) expect(() => databaseName(k), k).toThrow(/no such resource/);
  });

  it('parses {query, params} and refuses anything else with a message', () => {
    const req = (body: string, type = 'application/json') => ({ body: Buffer.from(body), headers: { 'content-type': type } });
    expect(parseQueryBody(req('{"query":"SELECT ?","params":[1,true,null,"x"]}'))).toEqual({ query: 'SELECT ?', params: [1, 1, null, 'x'] });
    expect(parseQueryBody(req('{"query":"SELECT :a","params":{"a":2}}'))).toEqual({ query: 'SELECT :a', params: { ':a': 2 } });
    expect(() => parseQueryBody(req('nope'))).toThrow(/not valid JSON/);
    expect(() => parseQueryBody(req('{"query":""}'))).toThrow(/non-empty/);
    expect(() => parseQueryBody(req('{"query":"x","extra":1}'))).toThrow(/unknown field/);
    expect(() => parseQueryBody(req('{"query":"x","params":[{}]}'))).toThrow(/params\[0\]/);
    expect(() => parseQueryBody(req('{"query":"x"}', 'text/plain'))).toThrow(/application\/json/);
  });

  it('runs several statements, returns the last rows and counts changes', () => {
    const db = new SQL.Database();
    const r = runQuery(db, { query: 'CREATE TABLE t (a, b); INSERT INTO t VALUES (1, 2), (3, 4); SELECT * FROM t ORDER BY a' });
    expect(r).toEqual({ columns: ['a', 'b'], rows: [{ a: 1, b: 2 }, { a: 3, b: 4 }], changes: 2 });
    expect(runQuery(db, { query: 'SELECT a FROM t WHERE b = ?', params: [4] }).rows).toEqual([{ a: 3 }]);
    expect(runQuery(db, { query: 'SELECT 1' }).changes).toBe(0);
    expect(() => runQuery(db, { query: 'SELECT 1; SELECT 2', params: [1] })).toThrow();
    expect(() => runQuery(db, { query: 'SELEC 1' })).toThrow(/syntax error/);
    db.close();
  });

  it('writes files atomically: the old file stays when the pre-rename check fails, no temp file is left', () => {
    const file = path.join(dir, 'x.sqlite');
    writeFileAtomic(file, Buffer.from('one'), () => undefined);
    expect(readFileSync(file, 'utf8')).toBe('one');
    expect(() => writeFileAtomic(file, Buffer.from('two'), () => {
      throw new Error('lease lost');
    })).toThrow(/lease lost/);
    expect(readFileSync(file, 'utf8')).toBe('one');
    expect(readdirSync(dir)).toEqual(['x.sqlite']);
  });
});

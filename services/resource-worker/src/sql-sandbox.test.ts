import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { checkSql, tokenize } from './sql-sandbox.ts';

const rule = (sql: string) => checkSql(sql)?.rule;

describe('SQL sandbox tokenizer', () => {
  it('skips strings, quoted identifiers and comments the way SQLite does', () => {
    const t = tokenize(`SELECT 'it''s -- no', "a""b", [x y], \`q\`\`r\`, x'0A' /* c */ -- d\n FROM t; `);
    expect(t.map((x) => x.kind)).toEqual(['word', 'string', 'punct', 'quoted', 'punct', 'quoted', 'punct', 'quoted', 'punct', 'blob', 'word', 'word', 'punct']);
    expect(t.filter((x) => x.kind === 'quoted').map((x) => x.name)).toEqual(['A"B', 'X Y', 'Q`R']);
    expect(tokenize('SELECT 1e+5, .5, ?1, :a, @b, $c').map((x) => x.text)).toEqual(['SELECT', '1e+5', ',', '.5', ',', '?1', ',', ':a', ',', '@b', ',', '$c']);
  });

  it('lets literals, quoted names and comments mention anything', () => {
    for (const sql of [
      "SELECT 'attach'",
      "SELECT 'ATTACH DATABASE ''/tmp/x'' AS y'",
      'SELECT 1 AS "attach"',
      'CREATE TABLE [detach] ("pragma" TEXT)',
      'SELECT 1 -- ATTACH later',
      'SELECT /* VACUUM INTO */ 1',
      "SELECT 'load_extension(''x'')'",
      'VACUUM',
      'VACUUM main',
      'VACUUM; INSERT INTO t VALUES (1)',
      'SELECT * FROM pragma_table_info(\'t\')',
      'PRAGMA table_info(t)',
      'PRAGMA main.table_info("t")',
      'PRAGMA integrity_check',
      'PRAGMA user_version = 3',
      'PRAGMA foreign_keys = ON; SELECT 1',
      'PRAGMA page_count',
      'SELECT load_extension_count FROM t',
      "SELECT 'a' || \"readfile\" FROM t",
    ]) {
      expect(checkSql(sql), sql).toBeUndefined();
    }
  });

  it('refuses ATTACH, DETACH, VACUUM INTO, dangerous functions and pragmas, naming the rule', () => {
    const cases: [string, string][] = [
      ["ATTACH '/tmp/shared.db' AS s", 'ATTACH'],
      ["attach database ':memory:' as m", 'ATTACH'],
      ["/*x*/ATTACH '/tmp/x' AS y", 'ATTACH'],
      ["SELECT 1;ATTACH'/tmp/x'AS y", 'ATTACH'],
      ['/* unterminated comment ends at */ DETACH s', 'DETACH'],
      ["SELECT '' ; DETACH DATABASE s", 'DETACH'],
      ['-- comment\nATTACH x AS y', 'ATTACH'],
      ["VACUUM INTO '/tmp/copy.db'", 'VACUUM INTO'],
      ["VACUUM main INTO '/tmp/copy.db'", 'VACUUM INTO'],
      ["vacuum/**/into'/tmp/copy.db'", 'VACUUM INTO'],
      ["SELECT load_extension('/tmp/evil.so')", 'load_extension'],
      ["SELECT LOAD_EXTENSION /* */ ('x')", 'load_extension'],
      ["SELECT \"load_extension\"('x')", 'load_extension'],
      ["SELECT [load_extension]('x')", 'load_extension'],
      ["SELECT readfile('/etc/passwd')", 'readfile'],
      ["SELECT writefile('/tmp/x', 'y')", 'writefile'],
      ["SELECT fts3_tokenizer('simple')", 'fts3_tokenizer'],
      ['PRAGMA writable_schema = ON', 'PRAGMA writable_schema'],
      ['PRAGMA main.writable_schema=1', 'PRAGMA writable_schema'],
      ['PRAGMA "writable_schema" = 1', 'PRAGMA writable_schema'],
      ["PRAGMA 'writable_schema' = 1", 'PRAGMA'],
      ['PRAGMA journal_mode = WAL', 'PRAGMA journal_mode'],
      ["PRAGMA temp_store_directory = '/tmp'", 'PRAGMA temp_store_directory'],
      ['PRAGMA trusted_schema = ON', 'PRAGMA trusted_schema'],
      ['PRAGMA mmap_size = 1000000', 'PRAGMA mmap_size'],
      ['PRAGMA schema_version = 7', 'PRAGMA schema_version'],
      ['PRAGMA page_size(1024)', 'PRAGMA page_size'],
      ['PRAGMA table_info = t', 'PRAGMA table_info'],
      ['SELECT 1; PRAGMA cache_size = 100000000', 'PRAGMA cache_size'],
      ['PRAGMA', 'PRAGMA'],
    ];
    for (const [sql, expected] of cases) {
      const v = checkSql(sql);
      expect(v?.rule, sql).toBe(expected);
      expect(v?.message, sql).toMatch(/not allowed|read-only|must end|pragma name/);
    }
    expect(rule("ATTACH 'x' AS y")).toBe('ATTACH');
  });

  it('errs on the strict side where it reads differently from SQLite', () => {
    // SQLite reads `$a(ATTACH)` as one TCL-style variable; the sandbox sees the keyword and refuses.
    expect(rule('SELECT $a(ATTACH)')).toBe('ATTACH');
    // A bare keyword used as a column name must be quoted.
    expect(rule('SELECT attach FROM t')).toBe('ATTACH');
    // An unterminated string hides nothing: SQLite refuses it as a syntax error.
    expect(rule("SELECT 'abc")).toBeUndefined();
  });
});

// Fragments SQLite reads as nothing between tokens, or as a token separator.
const gap = fc.constantFrom('', ' ', '  ', '\n', '\t', '\r\n', '\f', '/**/', '/* x */', '/*/ */', '-- c\n', '/* ATTACH */');
const anyCase = (word: string) => fc.array(fc.boolean(), { minLength: word.length, maxLength: word.length }).map((up) => [...word].map((c, i) => (up[i] ? c.toUpperCase() : c.toLowerCase())).join(''));
const name = (word: string) => fc.oneof(anyCase(word), fc.constant(`"${word}"`), fc.constant(`[${word}]`), fc.constant(`\`${word}\``));
const joined = (parts: fc.Arbitrary<string>[]) => fc.tuple(...parts.flatMap((p) => [gap, p])).map((xs) => xs.join(''));

/** Statements that would reach outside the key's database (or corrupt it), spelled every way SQLite allows. */
const escape = (file: string) =>
  fc.oneof(
    joined([anyCase('ATTACH'), fc.constantFrom('', 'DATABASE'), fc.constant(`'${file}'`), anyCase('AS'), name('other')]),
    joined([anyCase('VACUUM'), fc.constantFrom('', 'main', '"main"'), anyCase('INTO'), fc.constant(`'${file}'`)]),
    joined([anyCase('PRAGMA'), fc.constantFrom('', 'main.', '"main".'), name('writable_schema'), fc.constantFrom('=', '(', ' = '), fc.constantFrom('1', 'ON', "'on'"), fc.constantFrom('', ')')]),
  );
const around = fc.constantFrom('', 'SELECT 1;', "SELECT 'attach';", 'SELECT "x" FROM t;', 'CREATE TABLE IF NOT EXISTS u (a);');

describe('SQL sandbox against SQLite itself (property)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sandbox-escape-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;

  it('whatever the sandbox lets through attaches nothing, writes no file and leaves the schema read-only', () => {
    fc.assert(
      fc.property(around, fc.nat(), around, (before, k, after) => {
        const file = path.join(dir, `escape-${++n}.db`);
        const core = fc.sample(escape(file), { numRuns: 1, seed: k })[0]!;
        const sql = `${before}${core}${after === '' ? '' : `;${after}`}`;
        if (checkSql(sql) !== undefined) return; // refused: nothing runs
        const db = new Database(':memory:');
        db.exec('CREATE TABLE t (x)');
        try {
          db.exec(sql);
        } catch {
          // a syntax error is fine: it did nothing
        }
        const attached = (db.pragma('database_list') as { name: string }[]).map((r) => r.name);
        expect(attached.filter((d) => d !== 'main' && d !== 'temp'), sql).toEqual([]);
        expect(db.pragma('writable_schema', { simple: true }), sql).toBe(0);
        db.close();
        expect(existsSync(file), `${sql} wrote ${file}`).toBe(false);
      }),
      { numRuns: 2000, seed: 20261201 },
    );
  });

  it('the same statements, refused when written as code, pass inside literals and comments', () => {
    fc.assert(
      fc.property(escape('/x.db'), fc.constantFrom('string', 'comment', 'line', 'ident'), (core, how) => {
        const hidden =
          how === 'string' ? `SELECT '${core.replace(/'/g, "''")}'`
          : how === 'comment' ? `SELECT 1 /* ${core.replace(/\*\//g, '')} */`
          : how === 'line' ? `SELECT 1 -- ${core.replace(/[\r\n]/g, ' ')}`
          : `SELECT 1 AS "${core.replace(/"/g, '""')}"`;
        expect(checkSql(hidden), hidden).toBeUndefined();
      }),
      { numRuns: 1000, seed: 20261201 },
    );
  });
});


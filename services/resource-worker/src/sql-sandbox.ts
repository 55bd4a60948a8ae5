/**
 * The SQLite sandbox: a key's SQL reaches only that key's database. better-sqlite3 exposes no authorizer
 * (sqlite3_set_authorizer) and no sqlite3_limit (SQLITE_LIMIT_ATTACHED), so statements are checked before they
 * run, on the tokens SQLite itself would see: string literals, quoted identifiers and comments are skipped the
 * way SQLite's tokenizer skips them (`SELECT 'attach'` is fine, `/*x*\/ATTACH` is not), and anything the
 * tokenizer cannot read the way SQLite does errs on the side of refusing.
 *
 * Refused, with the rule named:
 *   - ATTACH and DETACH (another database file, or a shared in-memory one);
 *   - VACUUM ... INTO (writes a copy of the database to a file);
 *   - calls of load_extension, readfile, writefile, edit, fts3_tokenizer (files, native code, raw pointers);
 *   - every PRAGMA but a small allow-list: read-only introspection (table_info, index_list, integrity_check, ...)
 *     and a few harmless settings (user_version, application_id, foreign_keys, ...). So
 *     writable_schema, journal_mode, temp_store_directory, mmap_size, trusted_schema, schema_version = ... and the
 *     rest are refused. Pragma table-valued functions (`SELECT * FROM pragma_table_info('t')`) stay allowed:
 *     SQLite offers them only for pragmas without side effects.
 *
 * A keyword written as a bare word is taken for the keyword wherever it appears (a column called `attach` or
 * `pragma` must be quoted: "attach").
 *
 * This check is what keeps a key's SQL away from other files: the database is a real file, and below the sandbox
 * SQLite would ATTACH any path the worker's user may open. Defence in depth below it: each key's database runs in
 * its own process (sqlite-child.ts: no shared memory with other keys or the worker, a minimal environment), with
 * `PRAGMA trusted_schema = OFF`, SQLite's defensive mode on (better-sqlite3's default while `unsafeMode` is off:
 * ordinary SQL cannot corrupt the file, writable_schema cannot be used), and the `load_extension()` SQL function
 * off (better-sqlite3 enables only the C API's `loadExtension`, which this code never calls).
 */

export type TokenKind = 'word' | 'quoted' | 'string' | 'blob' | 'number' | 'param' | 'punct';

export interface Token {
  kind: TokenKind;
  /** The token as written. */
  text: string;
  /** Words and quoted identifiers: the name, quotes removed, ASCII letters upper-cased (as SQLite compares names). */
  name?: string;
  offset: number;
}

export interface SandboxViolation {
  /** A short name of the rule, e.g. 'ATTACH', 'VACUUM INTO', 'load_extension', 'PRAGMA writable_schema'. */
  rule: string;
  message: string;
}

// Character classes of SQLite's tokenizer (tokenize.c), on UTF-16 code units: identifier characters are ASCII
// letters, digits, '_', '$' and everything from 0x80 up; whitespace is space, \t, \n, \f, \r.
const isSpace = (c: number) => c === 32 || c === 9 || c === 10 || c === 12 || c === 13;
const isDigit = (c: number) => c >= 48 && c <= 57;
const isIdStart = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c >= 0x80;
const isIdChar = (c: number) => isIdStart(c) || isDigit(c) || c === 36;

/** Names longer than this match no rule's name (the longest is 18 characters); they are not copied. */
const MAX_NAME = 24;
const LONG_NAME = '\u0000';

/**
 * Splits SQL into tokens as SQLite's tokenizer does, calling `visit(kind, start, end)` for each and skipping
 * whitespace and comments; stops when `visit` returns true. One pass, no allocation per token: the check runs on
 * the worker's main thread, for bodies up to RESOURCE_BODY_LIMIT_BYTES. An unterminated string or quoted
 * identifier runs to the end of the text (SQLite refuses it as a syntax error anyway). Operators are one
 * character each (none matters to the rules).
 */
export function scan(sql: string, visit: (kind: TokenKind, start: number, end: number) => boolean | void): void {
  const n = sql.length;
  /** The end of a quoted run starting at `start` (the opening quote); a doubled closing quote escapes it. */
  const quotedEnd = (start: number, close: string, doubling: boolean): number => {
    let j = start + 1;
    for (;;) {
      j = sql.indexOf(close, j);
      if (j < 0) return n;
      if (doubling && sql[j + 1] === close) {
        j += 2;
        continue;
      }
      return j + 1;
    }
  };
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    const d = sql.charCodeAt(i + 1); // NaN past the end
    let kind: TokenKind;
    let end: number;
    if (isSpace(c)) {
      i += 1;
      continue;
    } else if (c === 45 && d === 45) {
      // -- to the end of the line
      const nl = sql.indexOf('\n', i + 2);
      i = nl < 0 ? n : nl + 1;
      continue;
    } else if (c === 47 && d === 42) {
      // /* ... */, not nested: the first '*/' ends it; an unterminated comment runs to the end (SQLite accepts that).
      const close = sql.indexOf('*/', i + 2);
      i = close < 0 ? n : close + 2;
      continue;
    } else if (c === 39) {
      kind = 'string';
      end = quotedEnd(i, "'", true);
    } else if (c === 34 || c === 96) {
      kind = 'quoted';
      end = quotedEnd(i, sql[i]!, true);
    } else if (c === 91) {
      kind = 'quoted';
      const close = sql.indexOf(']', i + 1);
      end = close < 0 ? n : close + 1;
    } else if ((c === 120 || c === 88) && d === 39) {
      kind = 'blob';
      end = quotedEnd(i + 1, "'", false);
    } else if (isDigit(c) || (c === 46 && isDigit(d))) {
      kind = 'number';
      end = i + 1;
      while (end < n) {
        const e = sql.charCodeAt(end);
        if (!(isIdChar(e) || e === 46) || e === 36) break;
        // An exponent's sign belongs to the number: 1e+5.
        if ((e === 101 || e === 69) && (sql[end + 1] === '+' || sql[end + 1] === '-')) end += 1;
        end += 1;
      }
    } else if (c === 63) {
      kind = 'param';
      end = i + 1;
      while (end < n && isDigit(sql.charCodeAt(end))) end += 1;
    } else if (c === 58 || c === 64 || c === 36 || c === 35) {
      // Named parameters :a @a $a #a. (SQLite's TCL-style `$a::b(...)` suffixes are not followed: whatever they
      // contain is then read as ordinary tokens, which can only make the check stricter.)
      end = i + 1;
      while (end < n && isIdChar(sql.charCodeAt(end))) end += 1;
      kind = end > i + 1 ? 'param' : 'punct';
    } else if (isIdStart(c)) {
      kind = 'word';
      end = i + 1;
      while (end < n && isIdChar(sql.charCodeAt(end))) end += 1;
    } else {
      kind = 'punct';
      end = i + 1;
    }
    if (visit(kind, i, end) === true) return;
    i = end;
  }
}

/** A word's or quoted identifier's name: unquoted, ASCII upper-cased; LONG_NAME past MAX_NAME characters. */
function nameOf(sql: string, kind: TokenKind, start: number, end: number): string {
  let from = start;
  let to = end;
  let quote = '';
  if (kind === 'quoted') {
    quote = sql[start]!;
    const close = quote === '[' ? ']' : quote;
    from = start + 1;
    if (to - from >= 1 && sql[to - 1] === close) to -= 1;
  }
  if (to - from > MAX_NAME * 2) return LONG_NAME;
  let name = sql.slice(from, to);
  if (quote === '"' || quote === '`') name = name.split(quote + quote).join(quote);
  if (name.length > MAX_NAME) return LONG_NAME;
  // SQLite folds ASCII only. toUpperCase() may also fold other letters ('ı' to 'I'), which can only make a name
  // SQLite does not know look like one of ours: a stricter check, never a laxer one.
  return name.toUpperCase();
}

/** Every token, as objects (for tests and tools; `checkSql` itself does not build this list). */
export function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  scan(sql, (kind, start, end) => {
    const token: Token = { kind, text: sql.slice(start, end), offset: start };
    if (kind === 'word' || kind === 'quoted') token.name = nameOf(sql, kind, start, end);
    out.push(token);
  });
  return out;
}

/** Functions no key may call: they read or write files, load native code, or take raw pointers. */
export const DENIED_FUNCTIONS = new Set(['LOAD_EXTENSION', 'READFILE', 'WRITEFILE', 'EDIT', 'FTS3_TOKENIZER']);

/** Pragmas that only report, and take no argument (`PRAGMA page_size(8192)` would set it: refused). */
export const NO_ARGUMENT_PRAGMAS = new Set([
  'COLLATION_LIST', 'FUNCTION_LIST', 'MODULE_LIST', 'PRAGMA_LIST', 'COMPILE_OPTIONS', 'DATA_VERSION', 'PAGE_COUNT',
  'FREELIST_COUNT', 'PAGE_SIZE', 'ENCODING', 'SCHEMA_VERSION',
]);

/** Pragmas that only report, bare or with a table, index or schema name (or a count) in parentheses. */
export const NAME_ARGUMENT_PRAGMAS = new Set([
  'TABLE_INFO', 'TABLE_XINFO', 'TABLE_LIST', 'INDEX_LIST', 'INDEX_INFO', 'INDEX_XINFO', 'FOREIGN_KEY_LIST',
  'FOREIGN_KEY_CHECK', 'INTEGRITY_CHECK', 'QUICK_CHECK',
]);

/** Pragmas a key may also set: they change only that database's own header fields or this connection's checks. */
export const SETTABLE_PRAGMAS = new Set(['USER_VERSION', 'APPLICATION_ID', 'FOREIGN_KEYS', 'DEFER_FOREIGN_KEYS', 'RECURSIVE_TRIGGERS']);

const ALLOWED_PRAGMAS = [...NAME_ARGUMENT_PRAGMAS, ...NO_ARGUMENT_PRAGMAS, ...SETTABLE_PRAGMAS].map((p) => p.toLowerCase()).join(', ');

/**
 * What may follow `PRAGMA [schema.]name`: nothing (end of statement), `= value` or `(value)` for a settable
 * pragma, `(name)` for one that reports on a table or index. `next` is the token after the name: ';', '=', '(',
 * another token, or undefined at the end of the text.
 */
function pragmaViolation(pragma: string, next: string | undefined): SandboxViolation | undefined {
  const shown = `PRAGMA ${pragma === LONG_NAME ? '(a very long name)' : pragma.toLowerCase()}`;
  if (!NAME_ARGUMENT_PRAGMAS.has(pragma) && !NO_ARGUMENT_PRAGMAS.has(pragma) && !SETTABLE_PRAGMAS.has(pragma)) {
    return { rule: shown, message: `${shown} is not allowed; allowed pragmas: ${ALLOWED_PRAGMAS}` };
  }
  const ends = next === undefined || next === ';';
  if (SETTABLE_PRAGMAS.has(pragma)) return ends || next === '=' || next === '(' ? undefined : { rule: shown, message: `${shown} must end the statement` };
  if (next === '=' || (next === '(' && NO_ARGUMENT_PRAGMAS.has(pragma))) return { rule: shown, message: `${shown} is read-only here: it takes no value` };
  if (!ends && next !== '(') return { rule: shown, message: `${shown} must end the statement` };
  return undefined;
}

const NO_PRAGMA_NAME: SandboxViolation = { rule: 'PRAGMA', message: 'PRAGMA needs a pragma name from the allowed list' };

/** The first rule the SQL breaks, or undefined when it may run. One pass over the text. */
export function checkSql(sql: string): SandboxViolation | undefined {
  let violation: SandboxViolation | undefined;
  let vacuum = false; // a VACUUM earlier in this statement
  let previousName: string | undefined; // the previous token's name, if it was a word or quoted identifier
  // PRAGMA [schema.]name: 1 after PRAGMA, 2 after a first name, 3 after 'schema.', 4 after 'schema.name'.
  let pragmaState = 0;
  let pragma = '';
  scan(sql, (kind, start, end) => {
    const isName = kind === 'word' || kind === 'quoted';
    const name = isName ? nameOf(sql, kind, start, end) : undefined;
    const punct = kind === 'punct' ? sql[start] : undefined;
    if (pragmaState === 1 || pragmaState === 3) {
      if (!isName) {
        violation = NO_PRAGMA_NAME;
        return true;
      }
      pragma = name!;
      pragmaState += 1;
      previousName = name;
      return false;
    }
    if (pragmaState === 2 && punct === '.') {
      pragmaState = 3;
      previousName = undefined;
      return false;
    }
    if (pragmaState === 2 || pragmaState === 4) {
      pragmaState = 0;
      violation = pragmaViolation(pragma, punct ?? sql.slice(start, Math.min(end, start + 1)) + (kind === 'punct' ? '' : ' '));
      if (violation) return true;
    }
    if (punct === ';') vacuum = false;
    if (punct === '(' && previousName !== undefined && DENIED_FUNCTIONS.has(previousName)) {
      const fn = previousName.toLowerCase();
      violation = { rule: fn, message: `${fn}() is not allowed: it reaches files or native code outside the key's database` };
      return true;
    }
    if (kind === 'word') {
      if (name === 'ATTACH' || name === 'DETACH') {
        violation = { rule: name, message: `${name} is not allowed: a key's SQL reaches only that key's database` };
        return true;
      }
      if (name === 'VACUUM') vacuum = true;
      if (name === 'INTO' && vacuum) {
        violation = { rule: 'VACUUM INTO', message: 'VACUUM INTO is not allowed: it writes a copy of the database to a file (plain VACUUM is allowed)' };
        return true;
      }
      if (name === 'PRAGMA') pragmaState = 1;
    }
    previousName = name;
    return false;
  });
  if (violation) return violation;
  if (pragmaState === 1 || pragmaState === 3) return NO_PRAGMA_NAME;
  if (pragmaState === 2 || pragmaState === 4) return pragmaViolation(pragma, undefined);
  return undefined;
}

/**
 * A violation as the suite's error answer: 403, `code` STATEMENT_NOT_ALLOWED for every rule, the rule itself in
 * `details.rule` (a rule is a name such as 'ATTACH', not a stable machine code).
 */
export function sandboxFailure(v: SandboxViolation): { status: 403; error: string; message: string; code: string; details: { rule: string } } {
  return { status: 403, error: 'Statement not allowed', message: v.message, code: 'STATEMENT_NOT_ALLOWED', details: { rule: v.rule } };
}

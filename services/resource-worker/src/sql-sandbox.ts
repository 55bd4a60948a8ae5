/**
 * The SQLite sandbox: a key's SQL reaches only that key's database. sql.js exposes no authorizer
 * (sqlite3_set_authorizer) and no defensive mode, so statements are checked before they run, on the tokens
 * SQLite itself would see: string literals, quoted identifiers and comments are skipped the way SQLite's
 * tokenizer skips them (`SELECT 'attach'` is fine, `/*x*\/ATTACH` is not), and anything the tokenizer cannot
 * read the way SQLite does errs on the side of refusing.
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
 * Defence in depth: each key's database also runs in its own worker thread with its own sql.js module
 * instance (its own Emscripten in-memory filesystem), and with `PRAGMA trusted_schema = OFF`.
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

const asciiUpper = (s: string) => s.replace(/[a-z]/g, (c) => c.toUpperCase());

// SQLite's tokenizer (tokenize.c): identifier characters are ASCII letters, digits, '_', '$' and every byte >= 0x80.
const isIdStart = (c: string) => /[A-Za-z_]/.test(c) || c.charCodeAt(0) >= 0x80;
const isIdChar = (c: string) => /[A-Za-z0-9_$]/.test(c) || c.charCodeAt(0) >= 0x80;
const isSpace = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\f' || c === '\r';

/**
 * Splits SQL into tokens as SQLite's tokenizer does, dropping whitespace and comments. An unterminated string or
 * quoted identifier runs to the end of the text (SQLite refuses it as a syntax error anyway).
 */
export function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = sql.length;
  const push = (kind: TokenKind, start: number, end: number, name?: string) => out.push({ kind, text: sql.slice(start, end), name, offset: start });
  /** The end of a quoted run starting at `start` (the opening quote), where a doubled closing quote escapes it. */
  const quoted = (start: number, close: string, doubling: boolean): { end: number; closed: boolean } => {
    let j = start + 1;
    for (;;) {
      if (j >= n) return { end: n, closed: false };
      if (sql[j] === close) {
        if (doubling && sql[j + 1] === close) {
          j += 2;
          continue;
        }
        return { end: j + 1, closed: true };
      }
      j += 1;
    }
  };
  while (i < n) {
    const c = sql[i]!;
    if (isSpace(c)) {
      i += 1;
    } else if (c === '-' && sql[i + 1] === '-') {
      const nl = sql.indexOf('\n', i + 2);
      i = nl < 0 ? n : nl + 1;
    } else if (c === '/' && sql[i + 1] === '*') {
      // Not nested: the first '*/' ends it; an unterminated comment runs to the end (SQLite accepts that).
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? n : end + 2;
    } else if (c === "'") {
      const { end } = quoted(i, "'", true);
      push('string', i, end);
      i = end;
    } else if (c === '"' || c === '`') {
      const { end, closed } = quoted(i, c, true);
      const inner = sql.slice(i + 1, closed ? end - 1 : end).split(c + c).join(c);
      push('quoted', i, end, asciiUpper(inner));
      i = end;
    } else if (c === '[') {
      const close = sql.indexOf(']', i + 1);
      const end = close < 0 ? n : close + 1;
      push('quoted', i, end, asciiUpper(sql.slice(i + 1, close < 0 ? n : close)));
      i = end;
    } else if ((c === 'x' || c === 'X') && sql[i + 1] === "'") {
      const { end } = quoted(i + 1, "'", false);
      push('blob', i, end);
      i = end;
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(sql[i + 1] ?? ''))) {
      let j = i + 1;
      while (j < n && /[0-9A-Za-z_.]/.test(sql[j]!)) {
        // An exponent's sign belongs to the number: 1e+5.
        if ((sql[j] === 'e' || sql[j] === 'E') && (sql[j + 1] === '+' || sql[j + 1] === '-')) j += 1;
        j += 1;
      }
      push('number', i, j);
      i = j;
    } else if (c === '?') {
      let j = i + 1;
      while (j < n && /[0-9]/.test(sql[j]!)) j += 1;
      push('param', i, j);
      i = j;
    } else if (c === ':' || c === '@' || c === '$' || c === '#') {
      // Named parameters. (SQLite's TCL-style `$a::b(...)` suffixes are not followed: whatever they contain is
      // then read as ordinary tokens, which can only make the check stricter.)
      let j = i + 1;
      while (j < n && isIdChar(sql[j]!)) j += 1;
      push(j > i + 1 ? 'param' : 'punct', i, j);
      i = j;
    } else if (isIdStart(c)) {
      let j = i + 1;
      while (j < n && isIdChar(sql[j]!)) j += 1;
      const text = sql.slice(i, j);
      push('word', i, j, asciiUpper(text));
      i = j;
    } else {
      // Operators and punctuation, one or two characters (only ';', '(', ')', '.', '=' matter here).
      const two = sql.slice(i, i + 2);
      const len = ['<=', '>=', '==', '!=', '<>', '<<', '>>', '||', '->'].includes(two) ? (two === '->' && sql[i + 2] === '>' ? 3 : 2) : 1;
      push('punct', i, i + len);
      i += len;
    }
  }
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

const isName = (t: Token | undefined): t is Token => t !== undefined && (t.kind === 'word' || t.kind === 'quoted');
const isPunct = (t: Token | undefined, p: string) => t !== undefined && t.kind === 'punct' && t.text === p;

/** The first rule the SQL breaks, or undefined when it may run. */
export function checkSql(sql: string): SandboxViolation | undefined {
  const tokens = tokenize(sql);
  let vacuumAt = -1; // a VACUUM earlier in this statement
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (isPunct(t, ';')) {
      vacuumAt = -1;
      continue;
    }
    if (t.kind === 'word') {
      if (t.name === 'ATTACH' || t.name === 'DETACH') {
        return { rule: t.name, message: `${t.name} is not allowed: a key's SQL reaches only that key's database` };
      }
      if (t.name === 'VACUUM') vacuumAt = i;
      if (t.name === 'INTO' && vacuumAt >= 0) {
        return { rule: 'VACUUM INTO', message: "VACUUM INTO is not allowed: it writes a copy of the database to a file (plain VACUUM is allowed)" };
      }
      if (t.name === 'PRAGMA') {
        const v = checkPragma(tokens, i);
        if (v) return v;
      }
    }
    if (isName(t) && DENIED_FUNCTIONS.has(t.name!) && isPunct(tokens[i + 1], '(')) {
      const fn = t.name!.toLowerCase();
      return { rule: fn, message: `${fn}() is not allowed: it reaches files or native code outside the key's database` };
    }
  }
  return undefined;
}

function checkPragma(tokens: Token[], at: number): SandboxViolation | undefined {
  let i = at + 1;
  let name = tokens[i];
  if (isName(name) && isPunct(tokens[i + 1], '.')) {
    i += 2; // schema.pragma
    name = tokens[i];
  }
  if (!isName(name)) return { rule: 'PRAGMA', message: 'PRAGMA needs a pragma name from the allowed list' };
  const pragma = name.name!;
  const shown = `PRAGMA ${pragma.toLowerCase()}`;
  const next = tokens[i + 1];
  const ends = next === undefined || isPunct(next, ';');
  const sets = isPunct(next, '=');
  const args = isPunct(next, '(');
  const allowed = [...NAME_ARGUMENT_PRAGMAS, ...NO_ARGUMENT_PRAGMAS, ...SETTABLE_PRAGMAS].map((p) => p.toLowerCase());
  if (!NAME_ARGUMENT_PRAGMAS.has(pragma) && !NO_ARGUMENT_PRAGMAS.has(pragma) && !SETTABLE_PRAGMAS.has(pragma)) {
    return { rule: shown, message: `${shown} is not allowed; allowed pragmas: ${allowed.join(', ')}` };
  }
  if (SETTABLE_PRAGMAS.has(pragma)) return ends || sets || args ? undefined : { rule: shown, message: `${shown} must end the statement` };
  if (sets || (args && NO_ARGUMENT_PRAGMAS.has(pragma))) return { rule: shown, message: `${shown} is read-only here: it takes no value` };
  if (!ends && !args) return { rule: shown, message: `${shown} must end the statement` };
  return undefined;
}

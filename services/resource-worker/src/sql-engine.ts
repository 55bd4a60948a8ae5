import type BetterSqlite3 from 'better-sqlite3';
import { scan } from './sql-sandbox.ts';

/**
 * What a database process does with one request, on its better-sqlite3 connection. No imports from the suite's
 * libraries: this module is loaded into every database process (sqlite-child.ts), which must stay small.
 *
 * A request runs inside one transaction the engine opens (`BEGIN IMMEDIATE`, see `begin`); the caller decides
 * whether to COMMIT it (after the lease check) or ROLL it BACK. The client's own transaction statements are
 * mapped onto a savepoint inside it: `BEGIN` opens it, `COMMIT`/`END` releases it, `ROLLBACK` undoes it, and a
 * request that leaves it open has it rolled back (TRANSACTION_LEFT_OPEN), as before. Statements that succeeded
 * before a failing one stay applied (they are committed with the request), as in SQLite's own autocommit mode.
 */

export type SqlValue = number | string | null;
export type Params = SqlValue[] | Record<string, SqlValue>;
export type Database = BetterSqlite3.Database;

export interface QueryBody {
  query: string;
  params?: Params;
}

export interface QueryResult {
  columns: string[];
  rows: Record<string, unknown>[];
  changes: number;
}

/** An error the client sees, thrown inside a database process (sent to the parent as plain data). */
export class EngineError extends Error {
  constructor(readonly status: number, readonly title: string, message: string, readonly code: string, readonly details?: Record<string, unknown>) {
    super(message);
    this.name = 'EngineError';
  }
}

/** A refused or failed request: its status and the suite's error body `{error, message, code?, details?}`. */
export interface EngineFailure {
  status: number;
  error: string;
  message: string;
  code?: string;
  details?: Record<string, unknown>;
}

export interface Outcome {
  result?: QueryResult;
  failure?: EngineFailure;
  /** A statement that may write ran (not `readonly` for SQLite): the request's transaction must be committed. */
  changed: boolean;
}

/** The savepoint that stands for the client's own BEGIN ... COMMIT inside the request's transaction. */
const USER_TXN = 'lookup_client_transaction';

interface Piece {
  text: string;
  /** First and second word, upper-cased ('' when absent): what kind of statement this is. */
  first: string;
  second: string;
  /** Whether it holds a token other than ';' (whitespace and comments alone are not a statement). */
  empty: boolean;
}

/**
 * Splits SQL at the ';' tokens SQLite would see (strings, quoted names and comments skipped, through the
 * sandbox's tokenizer). A CREATE TRIGGER body holds ';' of its own: the runner joins pieces while SQLite answers
 * "incomplete input".
 */
export function splitStatements(sql: string): Piece[] {
  const out: Piece[] = [];
  let start = 0;
  let words: string[] = [];
  let empty = true;
  scan(sql, (kind, s, e) => {
    if (kind === 'punct' && sql[s] === ';') {
      out.push({ text: sql.slice(start, e), first: words[0] ?? '', second: words[1] ?? '', empty });
      start = e;
      words = [];
      empty = true;
      return;
    }
    empty = false;
    if (words.length < 2) words.push(kind === 'word' ? sql.slice(s, e).toUpperCase() : '');
  });
  if (start < sql.length) out.push({ text: sql.slice(start), first: words[0] ?? '', second: words[1] ?? '', empty });
  return out;
}

function jsonValue(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return v.toString('base64');
  if (typeof v === 'bigint') return Number(v);
  return v;
}

/** better-sqlite3 binds named parameters by their bare name: ':a', '@a' and '$a' are all `a`. */
function bindable(params: Params): unknown[] {
  if (Array.isArray(params)) return params;
  const out: Record<string, SqlValue> = {};
  for (const [k, v] of Object.entries(params)) out[k.replace(/^[:@$]/, '')] = v;
  return [out];
}

const totalChanges = (db: Database) => Number(db.prepare('SELECT total_changes() AS n').pluck().get());

/** The client's transaction statements, mapped onto the USER_TXN savepoint; false for any other statement. */
function clientTransaction(db: Database, piece: Piece, state: { open: boolean }): boolean {
  const { first, second } = piece;
  const rollbackTo = first === 'ROLLBACK' && (second === 'TO' || (second === 'TRANSACTION' && /\bTO\b/i.test(piece.text)));
  if (first === 'BEGIN') {
    if (state.open) throw new EngineError(400, 'SQL error', 'cannot start a transaction within a transaction', 'SQL_ERROR');
    db.exec(`SAVEPOINT ${USER_TXN}`);
    state.open = true;
    return true;
  }
  if (first === 'COMMIT' || first === 'END') {
    if (!state.open) throw new EngineError(400, 'SQL error', 'cannot commit - no transaction is active', 'SQL_ERROR');
    db.exec(`RELEASE ${USER_TXN}`);
    state.open = false;
    return true;
  }
  if (first === 'ROLLBACK' && !rollbackTo) {
    if (!state.open) throw new EngineError(400, 'SQL error', 'cannot rollback - no transaction is active', 'SQL_ERROR');
    db.exec(`ROLLBACK TO ${USER_TXN}; RELEASE ${USER_TXN}`);
    state.open = false;
    return true;
  }
  return false;
}

/**
 * Runs the statement(s) inside the caller's transaction: rows of the last statement that returns columns, and
 * the rows changed. `state.open` tells the caller a client transaction is still open; `state.changed` whether a
 * statement that may write ran.
 */
export function runQuery(db: Database, { query, params }: QueryBody, state = { open: false, changed: false }): QueryResult {
  let columns: string[] = [];
  let rows: Record<string, unknown>[] = [];
  const before = totalChanges(db);
  const pieces = splitStatements(query);
  let first = true;
  for (let i = 0; i < pieces.length; i++) {
    let piece = pieces[i]!;
    if (piece.empty) continue;
    let stmt: BetterSqlite3.Statement | undefined;
    if (!clientTransaction(db, piece, state)) {
      let text = piece.text;
      for (;;) {
        try {
          stmt = db.prepare(text);
          break;
        } catch (err) {
          // A trigger body: its ';' are not the statement's end. Join the next piece and try again.
          if (/incomplete input/.test((err as Error).message) && i + 1 < pieces.length) {
            text += pieces[++i]!.text;
            continue;
          }
          throw err;
        }
      }
      piece = { ...piece, text };
    }
    const args = first && params !== undefined ? bindable(params) : [];
    if (first && params !== undefined && pieces.slice(i + 1).some((p) => !p.empty)) {
      throw new EngineError(400, 'SQL error', '"params" can only be used with a single statement', 'SQL_ERROR');
    }
    first = false;
    if (!stmt) continue;
    if (!stmt.readonly) state.changed = true;
    if (stmt.reader) {
      const names = stmt.columns().map((c) => c.name);
      const values = stmt.raw(true).all(...args) as unknown[][];
      columns = names;
      rows = values.map((v) => {
        const row: Record<string, unknown> = {};
        names.forEach((n, j) => (row[n] = jsonValue(v[j])));
        return row;
      });
    } else {
      stmt.run(...args);
    }
  }
  return { columns, rows, changes: totalChanges(db) - before };
}

/** Whether the request is just `VACUUM [schema]` (one statement), which must run outside a transaction. */
export function isVacuumAlone(query: string): boolean {
  const pieces = splitStatements(query).filter((p) => !p.empty);
  return pieces.length === 1 && pieces[0]!.first === 'VACUUM';
}

/** Opens the request's transaction. BEGIN IMMEDIATE: the write lock now, or SQLITE_BUSY now, not half-way. */
export function begin(db: Database): void {
  db.exec('BEGIN IMMEDIATE');
}

/** An error thrown while running a request, as the client's answer (SQLITE_BUSY: 503, the rest: 400). */
export function failureOf(err: unknown): EngineFailure {
  if (err instanceof EngineError) {
    return { status: err.status, error: err.title, message: err.message, code: err.code, ...(err.details ? { details: err.details } : {}) };
  }
  const code = (err as { code?: unknown }).code;
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || (typeof code === 'string' && code.startsWith('SQLITE_BUSY'))) {
    return { status: 503, error: 'Database unavailable', message: `The database is locked (${(err as Error).message}); retry`, code: 'DATABASE_UNAVAILABLE' };
  }
  return { status: 400, error: 'SQL error', message: (err as Error).message, code: 'SQL_ERROR' };
}

/**
 * One request, in the transaction `begin` opened: runs it, rolls back a client transaction it left open (a
 * transaction must end within its request), and says whether there is anything to commit. The transaction
 * stays open for the caller (unless SQLite itself rolled it back after an I/O or full-disk error).
 */
export function execute(db: Database, body: QueryBody): Outcome {
  const state = { open: false, changed: false };
  let result: QueryResult | undefined;
  let failure: EngineFailure | undefined;
  try {
    result = runQuery(db, body, state);
  } catch (err) {
    failure = failureOf(err);
  }
  if (state.open && db.inTransaction) {
    db.exec(`ROLLBACK TO ${USER_TXN}; RELEASE ${USER_TXN}`);
    failure ??= { status: 400, error: 'SQL error', message: 'The request left a transaction open; it was rolled back (BEGIN and COMMIT in one request)', code: 'TRANSACTION_LEFT_OPEN' };
  }
  return { result: failure ? undefined : result, failure, changed: state.changed && db.inTransaction };
}

/** `VACUUM` alone (it cannot run inside a transaction): run in autocommit mode, after the lease check. */
export function vacuum(db: Database, query: string): Outcome {
  try {
    db.exec(query);
    return { result: { columns: [], rows: [], changes: 0 }, changed: true };
  } catch (err) {
    return { failure: failureOf(err), changed: false };
  }
}

/** Microseconds on the machine-wide monotonic clock (CLOCK_MONOTONIC on Linux): comparable between processes. */
export const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

import type { Database, SqlValue } from 'sql.js';

/**
 * What a database thread does with one request, on its sql.js database. No imports from the suite's libraries:
 * this module is loaded into every database thread, which must stay small.
 */

export type Params = SqlValue[] | Record<string, SqlValue>;

export interface QueryBody {
  query: string;
  params?: Params;
}

export interface QueryResult {
  columns: string[];
  rows: Record<string, unknown>[];
  changes: number;
}

/** An error the client sees, thrown inside a database thread (sent to the main thread as plain data). */
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
  /** The database differs from what it was before the request: the file must be rewritten. */
  changed: boolean;
}

function jsonValue(v: SqlValue): unknown {
  return v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v;
}

/** Changes, schema version and user version: if any differ after a request, the database changed. */
export function stamp(db: Database): string {
  const r = db.exec('SELECT total_changes(), (SELECT schema_version FROM pragma_schema_version), (SELECT user_version FROM pragma_user_version)');
  return JSON.stringify(r[0]?.values[0] ?? []);
}

/** Runs the statement(s): rows of the last statement that returns columns, and the rows changed. */
export function runQuery(db: Database, { query, params }: QueryBody): QueryResult {
  let columns: string[] = [];
  let rows: Record<string, unknown>[] = [];
  const totalChanges = () => Number(db.exec('SELECT total_changes()')[0]?.values[0]?.[0] ?? 0);
  const before = totalChanges();
  let first = true;
  const it = db.iterateStatements(query);
  for (const stmt of it) {
    try {
      if (first && params !== undefined) {
        if (it.getRemainingSQL().replace(/[\s;]+/g, '') !== '') {
          throw new EngineError(400, 'SQL error', '"params" can only be used with a single statement', 'SQL_ERROR');
        }
        stmt.bind(params);
      }
      first = false;
      const names = stmt.getColumnNames();
      const out: Record<string, unknown>[] = [];
      while (stmt.step()) {
        const values = stmt.get();
        const row: Record<string, unknown> = {};
        names.forEach((n, i) => (row[n] = jsonValue(values[i] as SqlValue)));
        out.push(row);
      }
      if (names.length > 0) {
        columns = names;
        rows = out;
      }
    } finally {
      stmt.free();
    }
  }
  return { columns, rows, changes: totalChanges() - before };
}

/**
 * One request: runs it, rolls back a transaction it left open (a transaction must end within its request: the
 * file is written only in autocommit state), and says whether the database changed. Statements that succeeded
 * before a failing one stay applied, as in SQLite's own autocommit mode.
 */
export function execute(db: Database, body: QueryBody): Outcome {
  const before = stamp(db);
  let result: QueryResult | undefined;
  let failure: EngineFailure | undefined;
  try {
    result = runQuery(db, body);
  } catch (err) {
    failure = err instanceof EngineError
      ? { status: err.status, error: err.title, message: err.message, code: err.code, ...(err.details ? { details: err.details } : {}) }
      : { status: 400, error: 'SQL error', message: (err as Error).message, code: 'SQL_ERROR' };
  }
  let openTransaction = false;
  try {
    db.run('BEGIN');
    db.run('ROLLBACK');
  } catch {
    openTransaction = true;
    db.run('ROLLBACK');
  }
  if (!failure && openTransaction) {
    failure = { status: 400, error: 'SQL error', message: 'The request left a transaction open; it was rolled back (BEGIN and COMMIT in one request)', code: 'TRANSACTION_LEFT_OPEN' };
  }
  return { result: failure ? undefined : result, failure, changed: stamp(db) !== before };
}

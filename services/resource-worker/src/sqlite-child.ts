import Database from 'better-sqlite3';
import { checkSql, sandboxFailure } from './sql-sandbox.ts';
import { begin, execute, failureOf, isVacuumAlone, monotonicUs, vacuum, type Outcome, type QueryBody } from './sql-engine.ts';

/**
 * One key's database process (child_process.fork of this file by sqlite.ts): one better-sqlite3 connection to
 * the key's file, one request at a time, talking to the parent over the IPC channel. A process may be started
 * ahead of need (a spare: loaded, no database yet) and then serves the one key it is opened for until the parent
 * kills it (SIGKILL: statement time limit, abandoned request, lost lease, idle key, shutdown); it is never reused
 * for another key. It exits by itself when the parent goes away (the IPC channel closes).
 *
 * A request: BEGIN IMMEDIATE, the statements, then, if one of them may have written, `commit?` to the parent,
 * which checks the lease and answers `commit` (with the time it said so) or `rollback`. COMMIT runs only on
 * `commit`, and only if the answer arrived within its budget (measured on the machine-wide monotonic clock,
 * which parent and child share); otherwise the transaction is rolled back. Nothing else in this process commits.
 */

export interface OpenOptions {
  file: string;
  /** How long BEGIN IMMEDIATE waits for another connection's lock (a previous owner still finishing). */
  busyTimeoutMs: number;
}

export type ToChild =
  | ({ type: 'open' } & OpenOptions)
  /** `check`: run the SQL sandbox here first (large queries, so the parent does not spend time on them). */
  | { type: 'query'; id: number; body: QueryBody; check?: boolean }
  /** The lease was confirmed at `grantedAtUs` (process.hrtime, microseconds): COMMIT if within `budgetMs`. */
  | { type: 'commit'; id: number; grantedAtUs: number; budgetMs: number }
  | { type: 'rollback'; id: number };

export type FromChild =
  | { type: 'booted' }
  | { type: 'ready' }
  | { type: 'open-failed'; message: string }
  | { type: 'commit?'; id: number }
  | { type: 'done'; id: number; outcome: Outcome; committed: boolean }
  /** The lease answer came too late or was no: rolled back. */
  | { type: 'not-committed'; id: number; reason: 'late' | 'refused' }
  | { type: 'commit-failed'; id: number; message: string };

const post = (m: FromChild): void => {
  process.send!(m);
};

let db: Database.Database | undefined;
/** The request waiting for the lease answer: its outcome, and whether it is a lone VACUUM (runs on `commit`). */
let waiting: { id: number; outcome?: Outcome; vacuum?: string } | undefined;

function open(options: OpenOptions): void {
  const conn = new Database(options.file, { timeout: options.busyTimeoutMs });
  try {
    // A rollback journal, not WAL: the data directory may be a network volume, which has no shared memory.
    conn.pragma('journal_mode = DELETE');
    conn.pragma('synchronous = FULL');
    // Functions in the schema (views, triggers, defaults) must be innocuous; defensive mode (better-sqlite3's
    // default while unsafe mode is off) stops ordinary SQL from corrupting the file.
    conn.pragma('trusted_schema = OFF');
    conn.unsafeMode(false);
    // Reads the file now: a hot journal left by a killed owner is rolled back here, before the first request.
    conn.prepare('SELECT count(*) FROM sqlite_schema').get();
  } catch (err) {
    conn.close();
    throw err;
  }
  db = conn;
}

function rollback(): void {
  if (db?.inTransaction) db.exec('ROLLBACK');
}

function onQuery(m: Extract<ToChild, { type: 'query' }>): void {
  const violation = m.check ? checkSql(m.body.query) : undefined;
  if (violation) return post({ type: 'done', id: m.id, outcome: { failure: sandboxFailure(violation), changed: false }, committed: false });
  if (isVacuumAlone(m.body.query) && m.body.params === undefined) {
    waiting = { id: m.id, vacuum: m.body.query };
    return post({ type: 'commit?', id: m.id });
  }
  try {
    begin(db!);
  } catch (err) {
    return post({ type: 'done', id: m.id, outcome: { failure: failureOf(err), changed: false }, committed: false });
  }
  const outcome = execute(db!, m.body);
  if (!outcome.changed) {
    rollback();
    return post({ type: 'done', id: m.id, outcome, committed: false });
  }
  waiting = { id: m.id, outcome };
  post({ type: 'commit?', id: m.id });
}

function onCommit(m: Extract<ToChild, { type: 'commit' }>): void {
  const w = waiting;
  if (!w || w.id !== m.id) return;
  waiting = undefined;
  if (monotonicUs() - m.grantedAtUs > m.budgetMs * 1000) {
    rollback();
    return post({ type: 'not-committed', id: m.id, reason: 'late' });
  }
  if (w.vacuum !== undefined) return post({ type: 'done', id: m.id, outcome: vacuum(db!, w.vacuum), committed: true });
  try {
    db!.exec('COMMIT');
  } catch (err) {
    try {
      rollback();
    } catch {
      // the parent discards this process
    }
    return post({ type: 'commit-failed', id: m.id, message: (err as Error).message });
  }
  post({ type: 'done', id: m.id, outcome: w.outcome!, committed: true });
}

process.on('disconnect', () => process.exit(0));
process.on('message', (m: ToChild) => {
  if (m.type === 'open') {
    if (db) return post({ type: 'open-failed', message: 'this process already serves a database' });
    try {
      open(m);
    } catch (err) {
      return post({ type: 'open-failed', message: (err as Error).message });
    }
    return post({ type: 'ready' });
  }
  if (!db) return post({ type: 'commit-failed', id: m.id, message: 'no database open' });
  if (m.type === 'query') return onQuery(m);
  if (m.type === 'commit') return onCommit(m);
  if (m.type === 'rollback' && waiting?.id === m.id) {
    waiting = undefined;
    rollback();
    post({ type: 'not-committed', id: m.id, reason: 'refused' });
  }
});
post({ type: 'booted' });

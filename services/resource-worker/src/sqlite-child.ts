import { Worker } from 'node:worker_threads';
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
 *
 * A watchdog thread (the main thread may be inside SQLite's C code for as long as a statement runs, and then
 * handles no event) SIGKILLs this process when the parent is gone (reparented: the worker was SIGKILLed) or when a
 * request has run past `requestLimitMs` (the parent should have killed it by then: it is frozen or stuck). So an
 * endless statement never outlives its worker, and never holds the file's lock against the key's next owner.
 */

export interface OpenOptions {
  file: string;
  /** How long BEGIN IMMEDIATE waits for another connection's lock (a previous owner still finishing). */
  busyTimeoutMs: number;
  /** Past this, a request (statements, lease answer, commit) is ended by the watchdog killing this process. */
  requestLimitMs: number;
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

const startMs = Number(process.hrtime.bigint() / 1_000_000n);
/** Milliseconds since this process started (at least 1), on the monotonic clock. */
const nowMs = () => Math.max(1, Number(process.hrtime.bigint() / 1_000_000n) - startMs);
/** [0]: when the running request started (nowMs), 0 while idle; read by the watchdog thread. */
const requestStarted = new Int32Array(new SharedArrayBuffer(4));

const WATCHDOG = `
const { workerData } = require('node:worker_threads');
const { shared, ppid, limitMs, startMs } = workerData;
const started = new Int32Array(shared);
setInterval(() => {
  const now = Number(process.hrtime.bigint() / 1000000n) - startMs;
  const s = Atomics.load(started, 0);
  if (process.ppid !== ppid || (s > 0 && now - s > limitMs)) process.kill(process.pid, 'SIGKILL');
}, Math.max(20, Math.min(250, limitMs / 4)));
`;

function startWatchdog(limitMs: number): void {
  const worker = new Worker(WATCHDOG, {
    eval: true,
    workerData: { shared: requestStarted.buffer, ppid: process.ppid, limitMs, startMs },
  });
  worker.on('error', () => process.kill(process.pid, 'SIGKILL')); // no watchdog, no process
  worker.unref();
}

const post = (m: FromChild): void => {
  if (m.type === 'done' || m.type === 'not-committed' || m.type === 'commit-failed') Atomics.store(requestStarted, 0, 0);
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
  Atomics.store(requestStarted, 0, nowMs());
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
      startWatchdog(m.requestLimitMs);
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

import { existsSync, readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import initSqlJs, { type Database, type SqlJsConfig } from 'sql.js';
import { writeTemp } from './atomic-file.ts';
import { checkSql, sandboxFailure } from './sql-sandbox.ts';
import { execute, type Outcome, type QueryBody } from './sql-engine.ts';

/**
 * One key's database thread (a worker_thread): its own sql.js module instance (so its own Emscripten in-memory
 * filesystem, shared with no other key), its own copy of the database loaded from the key's file, one request
 * at a time. A thread may be started ahead of need (sql.js loaded, no database yet: a spare) and then serves the
 * one key it is opened for, until it is terminated; it is never reused for another key. A request that changed the database is exported to a temporary file (written and fsync'd here);
 * the main thread alone renames it over the key's file, after checking the lease. The main thread terminates
 * this thread when a statement runs past RESOURCE_STATEMENT_TIMEOUT_MS (V8 termination stops WebAssembly
 * mid-statement), when the request is abandoned or the lease lost, and when the key is closed.
 */

export interface ThreadData {
  /** The compiled sql.js WebAssembly.Module, shared by every thread (compiled once per process). */
  wasm?: unknown;
}

/** `open` once (a thread serves one key in its whole life), then queries. */
export type ToThread =
  | { type: 'open'; file: string }
  /** `check`: run the SQL sandbox here first (large queries, so the main thread does not spend time on them). */
  | { type: 'query'; id: number; body: QueryBody; tmp: string; check?: boolean };

export type FromThread =
  | { type: 'booted' }
  | { type: 'ready' }
  | { type: 'open-failed'; message: string }
  | { type: 'done'; id: number; outcome: Outcome; wrote: boolean }
  | { type: 'write-failed'; id: number; message: string };

const port = parentPort!;
const data = workerData as ThreadData;
const post = (m: FromThread) => port.postMessage(m);

/** Per connection, reset by sql.js's export() (which reopens the database): functions in the schema must be innocuous. */
function harden(db: Database): void {
  db.run('PRAGMA trusted_schema = OFF');
}

try {
  const wasm = data.wasm;
  // Instantiate the module the main thread compiled (Emscripten's instantiateWasm hook) instead of compiling it again.
  const WA = (globalThis as unknown as { WebAssembly: { instantiate(m: unknown, imports: unknown): Promise<unknown> } }).WebAssembly;
  const config = {
    instantiateWasm(imports: unknown, ok: (instance: unknown) => void) {
      void WA.instantiate(wasm, imports).then(ok);
      return {};
    },
  } as unknown as SqlJsConfig;
  const SQL = await initSqlJs(wasm ? config : undefined);
  let db: Database | undefined;
  port.on('message', (m: ToThread) => {
    if (m.type === 'open') {
      if (db) return post({ type: 'open-failed', message: 'this thread already serves a database' });
      try {
        db = existsSync(m.file) ? new SQL.Database(readFileSync(m.file)) : new SQL.Database();
        harden(db);
      } catch (err) {
        return post({ type: 'open-failed', message: (err as Error).message });
      }
      return post({ type: 'ready' });
    }
    if (!db) return post({ type: 'write-failed', id: m.id, message: 'no database open' });
    const violation = m.check ? checkSql(m.body.query) : undefined;
    if (violation) {
      const failure = sandboxFailure(violation);
      return post({ type: 'done', id: m.id, outcome: { failure, changed: false }, wrote: false });
    }
    const outcome = execute(db, m.body);
    if (!outcome.changed) return post({ type: 'done', id: m.id, outcome, wrote: false });
    try {
      writeTemp(m.tmp, db.export());
      harden(db);
    } catch (err) {
      // Memory is now ahead of the file: the main thread discards this thread.
      return post({ type: 'write-failed', id: m.id, message: (err as Error).message });
    }
    post({ type: 'done', id: m.id, outcome, wrote: true });
  });
  post({ type: 'booted' });
} catch (err) {
  post({ type: 'open-failed', message: (err as Error).message });
}

import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { SqlValue } from 'sql.js';
import { ResourceHttpError, type ResourceRequest, type ResourceResponse, type ResourceType } from '@lookup/resource-kit';
import { commitTemp, tempPathFor } from './atomic-file.ts';
import { checkSql, sandboxFailure } from './sql-sandbox.ts';
import type { Params, QueryBody } from './sql-engine.ts';
import type { FromThread, ThreadData, ToThread } from './sqlite-thread.ts';

export { writeFileAtomic } from './atomic-file.ts';
export { runQuery, type QueryBody } from './sql-engine.ts';

/**
 * The seed's example done properly: one SQLite database per key `db/<name>`, kept in
 * `<RESOURCE_DATA_DIR>/db/<name>.sqlite`. SQLite is sql.js (SQLite compiled to WebAssembly): no native addon, no
 * install script, nothing downloaded at install time.
 *
 * Each open key's database lives in its own worker thread (sqlite-thread.ts), with its own sql.js instance: the
 * worker's main thread (heartbeats, lease renewals, every other key) never runs SQL, and one key's SQL cannot
 * reach another key's in-memory filesystem. A request's SQL may run RESOURCE_STATEMENT_TIMEOUT_MS; past it the
 * thread is terminated (V8 termination interrupts WebAssembly mid-statement), the request answers 504, and the
 * next request reopens the database from its file, which holds the last committed state.
 *
 * Writes, and why a thread can never commit after the lease is lost: after a request that changed the database,
 * the thread exports it to a temporary file and fsyncs it, but only the main thread renames that file over the
 * key's file, in one synchronous step right after `ctx.assertOwner()` (the lease check on the monotonic clock,
 * a safety margin before Redis could grant the key to anyone else). The rename is the commit; a thread has no
 * way to perform it, so a thread still running, or one that finished after the lease was lost, produces at most a
 * temporary file that is removed. (The alternative, handing the thread a synchronous epoch check through shared
 * memory, would put the lease state in two places; here it stays where the heartbeats update it.) A crash at any
 * moment leaves the old or the new file, never a torn one.
 *
 * Before a request pins its key (`accept`, on the main thread): the key name (404), the method (405), the body
 * (400/415) and the SQL sandbox (403, sql-sandbox.ts; queries over MAIN_THREAD_CHECK_MAX are checked in the
 * database thread instead, before they run) are checked.
 */

export interface SqliteResource {
  name: string;
  file: string;
  /** The database thread; undefined once discarded (timeout, abandoned request, failed write): reopened on demand. */
  thread?: DatabaseThread;
}

/** 400 for a query body of the wrong shape. */
function badBody(message: string): ResourceHttpError {
  return new ResourceHttpError(400, { error: 'Invalid request body', message, code: 'INVALID_BODY' });
}

function notPost(method: string): ResourceHttpError {
  return new ResourceHttpError(
    405,
    { error: 'Method not allowed', message: `Use POST with {"query": "...", "params": [...]}, not ${method}`, code: 'METHOD_NOT_ALLOWED' },
    { allow: 'POST' },
  );
}

export const DB_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

/** `db/<name>` -> name, or a 404 for any other key. */
export function databaseName(key: string): string {
  const m = /^db\/([^/]+)$/.exec(key);
  if (!m || !DB_NAME_RE.test(m[1]!) || m[1]!.includes('..')) {
    throw new ResourceHttpError(404, {
      error: 'Unknown resource',
      message: `No such resource '${key}': this worker serves db/<name> keys, name of letters, digits, '.', '_' and '-'`,
      code: 'UNKNOWN_RESOURCE',
    });
  }
  return m[1]!;
}

/** Validates `{"query": "...", "params": [...] | {...}}`. */
export function parseQueryBody(request: Pick<ResourceRequest, 'body' | 'headers'>): QueryBody {
  const type = request.headers['content-type'];
  if (type !== undefined && !/^application\/json\b/i.test(type)) {
    throw new ResourceHttpError(415, { error: 'Unsupported media type', message: `Send the query as application/json, not '${type.slice(0, 100)}'`, code: 'UNSUPPORTED_MEDIA_TYPE' });
  }
  let body: unknown;
  try {
    body = JSON.parse(request.body.toString('utf8'));
  } catch {
    throw new ResourceHttpError(400, { error: 'Invalid JSON', message: 'The body is not valid JSON; send {"query": "...", "params": [...]}', code: 'INVALID_JSON' });
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badBody('The body must be a JSON object {"query": "...", "params": [...]}');
  const { query, params, ...rest } = body as Record<string, unknown>;
  const extra = Object.keys(rest);
  if (extra.length > 0) throw badBody(`Unknown field(s): ${extra.join(', ')}`);
  if (typeof query !== 'string' || query.trim() === '') throw badBody('"query" must be a non-empty string');
  if (params === undefined || params === null) return { query };
  const value = (v: unknown, where: string): SqlValue => {
    if (v === null || typeof v === 'string' || typeof v === 'number') return v;
    if (typeof v === 'boolean') return v ? 1 : 0;
    throw badBody(`${where} must be a string, number, boolean or null`);
  };
  if (Array.isArray(params)) return { query, params: params.map((v, i) => value(v, `params[${i}]`)) };
  if (typeof params === 'object') {
    const out: Record<string, SqlValue> = {};
    for (const [k, v] of Object.entries(params)) out[/^[:@$]/.test(k) ? k : `:${k}`] = value(v, `params.${k}`);
    return { query, params: out satisfies Params };
  }
  throw badBody('"params" must be an array or an object');
}

/**
 * Queries up to this size are checked by the sandbox on the main thread, before the key is pinned (a refused one
 * pins nothing). Larger ones are checked in the key's database thread, before they run, so a large body does not
 * hold up the heartbeats (the check costs tens of milliseconds per MiB).
 */
export const MAIN_THREAD_CHECK_MAX = 64 * 1024;

/** The SQL sandbox as an HTTP answer: 403, code STATEMENT_NOT_ALLOWED, the rule in `details.rule`. */
export function assertSqlAllowed(query: string): void {
  const violation = checkSql(query);
  if (violation) {
    const { status, ...body } = sandboxFailure(violation);
    throw new ResourceHttpError(status, body);
  }
}

/**
 * Starts a database thread: the compiled `sqlite-thread.js` beside this file, or, when running from TypeScript
 * sources (vitest, tsx), `sqlite-thread.ts` through tsx's loader.
 */
function spawnThread(data: ThreadData): Worker {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const entry = new URL('./sqlite-thread.ts', here).href;
    const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(entry)}); })`;
    return new Worker(boot, { eval: true, workerData: data });
  }
  return new Worker(new URL('./sqlite-thread.js', here), { workerData: data });
}

class ThreadStopped extends Error {}

/**
 * The main thread's handle on one database thread: started with sql.js loaded (`booted`), then opened for one
 * key's file (`open`, once), then one request at a time; terminated on demand.
 */
export class DatabaseThread {
  private readonly worker: Worker;
  /** Settles once sql.js is loaded in the thread. */
  readonly booted: Promise<void>;
  /** Settles once the database is loaded (rejects when it could not be); pending until `open`. */
  readonly ready: Promise<void>;
  private opened = false;
  private pending?: { id: number; resolve: (m: FromThread) => void; reject: (e: Error) => void };
  private nextId = 0;
  private stopped?: Error;
  private terminated?: Promise<void>;

  constructor(wasm: unknown) {
    this.worker = spawnThread({ wasm });
    let onBooted!: () => void;
    let onReady!: () => void;
    let failBoot!: (e: Error) => void;
    let failReady!: (e: Error) => void;
    this.booted = new Promise<void>((resolve, reject) => {
      onBooted = resolve;
      failBoot = reject;
    });
    this.ready = new Promise<void>((resolve, reject) => {
      onReady = resolve;
      failReady = reject;
    });
    const onFail = (e: Error) => {
      failBoot(e);
      failReady(e);
    };
    this.booted.catch(() => undefined); // observed by whoever awaits them
    this.ready.catch(() => undefined);
    this.worker.on('message', (m: FromThread) => {
      if (m.type === 'booted') return onBooted();
      if (m.type === 'ready') return onReady();
      if (m.type === 'open-failed') return this.stop(new Error(`could not open the database: ${m.message}`));
      const p = this.pending;
      if (p && p.id === m.id) {
        this.pending = undefined;
        p.resolve(m);
      }
    });
    this.worker.on('error', (err) => this.stop(err));
    this.worker.on('exit', (code) => this.stop(new ThreadStopped(`database thread exited (code ${code})`)));
    this.stop = (err: Error) => {
      if (this.stopped) return;
      this.stopped = err;
      onFail(err);
      const p = this.pending;
      this.pending = undefined;
      p?.reject(err);
    };
  }

  private stop: (err: Error) => void;

  get alive(): boolean {
    return this.stopped === undefined;
  }

  /** Loads the key's database file into the thread (once); `ready` settles when it is loaded. */
  open(file: string): this {
    if (this.opened) throw new Error('a database thread serves one database');
    this.opened = true;
    this.worker.ref();
    this.worker.postMessage({ type: 'open', file } satisfies ToThread);
    return this;
  }

  /** A spare thread does not keep the process alive. */
  unref(): this {
    this.worker.unref();
    return this;
  }

  /** Runs one request; rejects if the thread stops first. */
  run(body: QueryBody, tmp: string, check = true): Promise<Extract<FromThread, { type: 'done' | 'write-failed' }>> {
    if (this.stopped) return Promise.reject(this.stopped);
    if (this.pending) return Promise.reject(new Error('database thread busy'));
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      this.pending = { id, resolve: resolve as (m: FromThread) => void, reject };
      this.worker.postMessage({ type: 'query', id, body, tmp, check } satisfies ToThread);
    });
  }

  /** Stops the thread wherever it is (mid-statement included); safe to call twice. */
  terminate(): Promise<void> {
    this.stop(new ThreadStopped('database thread terminated'));
    this.terminated ??= this.worker.terminate().then(
      () => undefined,
      () => undefined,
    );
    return this.terminated;
  }
}

class StatementTimeout extends Error {}

/** Waits for `work`, unless the signal aborts first or (when given) `timeoutMs` passes. */
function within<T>(work: Promise<T>, signal: AbortSignal, timeoutMs?: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => reject(new StatementTimeout()), timeoutMs);
    const onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    });
  });
}

export interface SqliteTypeOptions {
  dataDir?: string;
  /** Overrides RESOURCE_STATEMENT_TIMEOUT_MS. */
  statementTimeoutMs?: number;
}

export function createSqliteType(options: SqliteTypeOptions = {}): ResourceType<SqliteResource> {
  let wasm: unknown;
  let ready = false;
  let dataDir = options.dataDir ?? '';
  let statementTimeoutMs = options.statementTimeoutMs ?? 5_000;
  /** Bodies accept() parsed, and whether the sandbox still has to check them (in the thread). */
  const parsed = new WeakMap<ResourceRequest, { body: QueryBody; check: boolean }>();
  // One thread started ahead of need, sql.js loaded, bound to no key: opening a key takes it (so a new key does
  // not wait for a thread to start) and starts the next one. It never serves two keys.
  let spare: DatabaseThread | undefined;
  const startSpare = () => {
    spare = new DatabaseThread(wasm).unref();
  };

  function startThread(resource: SqliteResource): DatabaseThread {
    if (!resource.thread || !resource.thread.alive) {
      const thread = spare?.alive ? spare : new DatabaseThread(wasm);
      startSpare();
      resource.thread = thread.open(resource.file);
    }
    return resource.thread;
  }

  /** Drops the thread and its in-memory state: what the file holds is what the next request sees. */
  async function discard(resource: SqliteResource, thread: DatabaseThread, tmp?: string): Promise<void> {
    if (resource.thread === thread) resource.thread = undefined;
    await thread.terminate();
    if (tmp) rmSync(tmp, { force: true });
  }

  return {
    name: 'sqlite',
    concurrency: 1,
    async setup({ config }) {
      const require = createRequire(import.meta.url);
      const G = globalThis as unknown as { WebAssembly: { compile(bytes: Uint8Array): Promise<unknown> } };
      wasm = await G.WebAssembly.compile(readFileSync(require.resolve('sql.js/dist/sql-wasm.wasm')));
      dataDir = path.resolve(options.dataDir ?? config.resourceDataDir);
      statementTimeoutMs = options.statementTimeoutMs ?? config.resourceStatementTimeoutMs;
      mkdirSync(path.join(dataDir, 'db'), { recursive: true });
      ready = true;
      startSpare();
    },
    accept(request) {
      databaseName(request.key);
      if (request.method !== 'POST') {
        throw notPost(request.method);
      }
      const body = parseQueryBody(request);
      const small = body.query.length <= MAIN_THREAD_CHECK_MAX;
      if (small) assertSqlAllowed(body.query);
      parsed.set(request, { body, check: !small });
    },
    async open(key, ctx) {
      if (!ready) throw new Error('sqlite type used before setup()');
      const name = databaseName(key);
      const file = path.join(dataDir, 'db', `${name}.sqlite`);
      const existed = existsSync(file);
      const resource: SqliteResource = { name, file };
      const thread = startThread(resource);
      try {
        await within(thread.ready, ctx.signal);
      } catch (err) {
        await discard(resource, thread);
        throw err;
      }
      ctx.logger.info({ file, existed }, 'database opened');
      return resource;
    },
    async handle(request, resource, ctx): Promise<ResourceResponse> {
      let prepared = parsed.get(request);
      if (!prepared) {
        // Called without accept() (a caller of the type other than ResourceHost): check in the thread.
        if (request.method !== 'POST') throw notPost(request.method);
        prepared = { body: parseQueryBody(request), check: true };
      }
      const { body, check } = prepared;
      const thread = startThread(resource);
      const tmp = tempPathFor(resource.file);
      let reply;
      try {
        await within(thread.ready, ctx.signal);
        reply = await within(thread.run(body, tmp, check), ctx.signal, statementTimeoutMs);
      } catch (err) {
        await discard(resource, thread, tmp);
        if (err instanceof StatementTimeout) {
          ctx.logger.warn({ timeoutMs: statementTimeoutMs }, 'statement interrupted at the time limit; database reopened from its file on the next request');
          throw new ResourceHttpError(504, {
            error: 'Statement timeout',
            message: `The request's SQL ran longer than ${statementTimeoutMs} ms (RESOURCE_STATEMENT_TIMEOUT_MS) and was interrupted; none of its changes were kept`,
            code: 'STATEMENT_TIMEOUT',
            details: { timeoutMs: statementTimeoutMs },
          });
        }
        if (ctx.signal.aborted) {
          ctx.assertOwner(); // throws the lease error (lost, or the request abandoned)
          throw err;
        }
        ctx.logger.warn({ err: (err as Error).message }, 'database thread failed; reopened from its file on the next request');
        throw new ResourceHttpError(
          503,
          {
            error: 'Database unavailable',
            message: `The database engine for '${resource.name}' stopped (${(err as Error).message}); retry, it restarts from the last committed state`,
            code: 'DATABASE_UNAVAILABLE',
          },
          { 'retry-after': '1' },
        );
      }
      if (reply.type === 'write-failed') {
        await discard(resource, thread, tmp);
        throw new Error(`could not write ${resource.file}: ${reply.message}`);
      }
      if (reply.wrote) {
        try {
          // Lease check and rename in one synchronous step on the main thread: see the comment at the top.
          commitTemp(tmp, resource.file, () => ctx.assertOwner());
        } catch (err) {
          // Memory is ahead of the file: discard it, so what we serve is what is stored.
          await discard(resource, thread, tmp);
          throw err;
        }
      }
      const { result, failure } = reply.outcome;
      if (failure) {
        const { status, ...body } = failure;
        throw new ResourceHttpError(status, body);
      }
      return { status: 200, body: { database: resource.name, ...result! } };
    },
    async close(resource) {
      const thread = resource.thread;
      resource.thread = undefined;
      await thread?.terminate();
    },
  };
}


import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { leaseTimings } from '@lookup/coordination';
import { ResourceHttpError, type ResourceRequest, type ResourceResponse, type ResourceType } from '@lookup/resource-kit';
import { checkSql, sandboxFailure } from './sql-sandbox.ts';
import { monotonicUs, type Params, type QueryBody, type SqlValue } from './sql-engine.ts';
import type { FromChild, ToChild } from './sqlite-child.ts';

export { runQuery, type QueryBody } from './sql-engine.ts';

/**
 * The seed's example done properly: one SQLite database per key `db/<name>`, kept on disk in
 * `<RESOURCE_DATA_DIR>/db/<name>.sqlite` and used through better-sqlite3 (SQLite's C library, a native addon
 * compiled at install time). Writes are incremental (SQLite's pager writes the pages a transaction changed), with a
 * rollback journal (`journal_mode = DELETE`, not WAL: the data directory may be a network volume, and WAL needs
 * shared memory between the processes that open the file) and `synchronous = FULL`.
 *
 * Each open key's database lives in its own child process (sqlite-child.ts, child_process.fork, IPC messages):
 * better-sqlite3 is synchronous and cannot be interrupted from JavaScript, and terminating a worker thread does
 * not stop native code, but SIGKILL stops a process anywhere. The worker's own process (heartbeats, lease
 * renewals, every other key) never runs SQL. A request's SQL may run RESOURCE_STATEMENT_TIMEOUT_MS; past it the
 * child is killed, the request answers 504, and the next request starts a new child, whose first read rolls back
 * the hot journal the killed one left: the file holds the last committed state. Children are also killed when
 * the key is closed (idle past RESOURCE_IDLE_MS, evicted under RESOURCE_MAX_OPEN, lease lost or released,
 * shutdown), so there are at most RESOURCE_MAX_OPEN of them, plus one spare started ahead of need.
 *
 * Writes, and why a commit cannot happen after the lease is lost. A request runs in one transaction
 * (BEGIN IMMEDIATE ...). Before COMMIT the child asks this process (`commit?`); here `ctx.assertOwner()` checks the
 * lease on the monotonic clock: it passes only before the slot's local deadline, which is the lease's safety
 * margin (RESOURCE_HEARTBEAT_MS x RESOURCE_MAX_MISSED / 5, at least) before Redis could grant the key to anyone
 * else. If it throws, the child is told to roll back. If it passes at time t, the child is told `commit` with t
 * and a budget of half that margin, and:
 *   - the child runs COMMIT only if it reads the answer before t + budget (process.hrtime: the machine-wide
 *     monotonic clock, the same in both processes), else it rolls back;
 *   - this process SIGKILLs the child at t + budget if it has not reported the commit done: a COMMIT that has not
 *     deleted its journal by then (the commit point in rollback-journal mode) never completes, and whoever opens
 *     the file next rolls it back; the request answers 503 (outcome unknown: the commit may have just finished);
 *   - the host aborts the request's signal at the local deadline, which also kills the child.
 * So a COMMIT can finish only before t + budget, which is at least half the safety margin before any other worker
 * can hold the key; the other half absorbs timer lag and signal delivery. (A filesystem stuck in fsync longer than
 * that delays even SIGKILL; then SQLite's own lock, held by the old child until it dies, still keeps a new owner's
 * BEGIN IMMEDIATE waiting, on filesystems whose POSIX locks work.) A request that only read (every statement
 * `readonly` for SQLite) is rolled back without asking: nothing to fence. VACUUM, which cannot run inside a
 * transaction, is run alone in its request after the same `commit?` exchange, under the same budget.
 *
 * Before a request pins its key (`accept`, in this process): the key name (404), the method (405), the body
 * (400/415) and the SQL sandbox (403, sql-sandbox.ts; queries over MAIN_THREAD_CHECK_MAX are checked in the
 * database process instead, before they run) are checked.
 */

export interface SqliteResource {
  name: string;
  file: string;
  /** The database process; undefined once discarded (timeout, abandoned request, failed commit): restarted on demand. */
  child?: DatabaseChild;
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
 * pins nothing). Larger ones are checked in the key's database process, before they run, so a large body does not
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

const ENV_PASSED = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ'];

/**
 * Forks a database process: the compiled `sqlite-child.js` beside this file, or, when running from TypeScript
 * sources (vitest, tsx), `sqlite-child.ts` through tsx's loader. It gets no secrets: a small environment, no
 * stdin, stdout ignored, stderr shared (a crash is seen).
 */
function forkChild(): ChildProcess {
  const here = import.meta.url;
  const fromSource = here.endsWith('.ts');
  const entry = fileURLToPath(new URL(fromSource ? './sqlite-child.ts' : './sqlite-child.js', here));
  const execArgv = fromSource ? ['--import', pathToFileURL(createRequire(here).resolve('tsx')).href] : [];
  const env: NodeJS.ProcessEnv = {};
  for (const name of ENV_PASSED) if (process.env[name] !== undefined) env[name] = process.env[name];
  return fork(entry, [], { execArgv, env, stdio: ['ignore', 'ignore', 'inherit', 'ipc'], serialization: 'json' });
}

class ChildStopped extends Error {}
class StatementTimeout extends Error {}
class CommitTimeout extends Error {}

type Done = Extract<FromChild, { type: 'done' }>;

export interface RunOptions {
  /** Longest the statements may run (RESOURCE_STATEMENT_TIMEOUT_MS); the child is killed past it. */
  timeoutMs?: number;
  /** Aborted: the child is killed wherever it is. */
  signal?: AbortSignal;
  /** The lease check before COMMIT (throws to refuse); see the comment at the top. */
  beforeCommit: () => void;
  /** How long after a passed check the COMMIT may still start and must have finished. */
  commitBudgetMs: number;
}

/**
 * This process's handle on one database process: forked (`booted`), then opened for one key's file (`open`,
 * once), then one request at a time; killed on demand.
 */
export class DatabaseChild {
  private readonly child: ChildProcess;
  /** Settles once the process is up. */
  readonly booted: Promise<void>;
  /** Settles once the database is open (rejects when it could not be); pending until `open`. */
  readonly ready: Promise<void>;
  private opened = false;
  private pending?: { id: number; onMessage: (m: FromChild) => void; fail: (e: Error) => void };
  private nextId = 0;
  private stopped?: Error;
  private exited: Promise<void>;

  constructor() {
    this.child = forkChild();
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
    this.booted.catch(() => undefined); // observed by whoever awaits them
    this.ready.catch(() => undefined);
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    this.child.on('message', (m: FromChild) => {
      if (m.type === 'booted') return onBooted();
      if (m.type === 'ready') return onReady();
      if (m.type === 'open-failed') return this.stop(new Error(`could not open the database: ${m.message}`));
      if (this.pending && this.pending.id === m.id) this.pending.onMessage(m);
    });
    this.child.on('error', (err) => this.stop(err));
    this.child.on('exit', (code, signal) => this.stop(new ChildStopped(`database process exited (${signal ?? `code ${code}`})`)));
    this.stop = (err: Error) => {
      if (this.stopped) return;
      this.stopped = err;
      failBoot(err);
      failReady(err);
      const p = this.pending;
      this.pending = undefined;
      p?.fail(err);
    };
  }

  private stop: (err: Error) => void;

  get alive(): boolean {
    return this.stopped === undefined;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private send(m: ToChild): void {
    if (this.child.connected) this.child.send(m);
  }

  /** Opens the key's database in the process (once); `ready` settles when it is open. */
  open(file: string, busyTimeoutMs: number, requestLimitMs: number): this {
    if (this.opened) throw new Error('a database process serves one database');
    this.opened = true;
    this.child.ref();
    (this.child.channel as { ref?: () => void } | undefined)?.ref?.();
    this.send({ type: 'open', file, busyTimeoutMs, requestLimitMs });
    return this;
  }

  /** A spare process does not keep this one alive. */
  unref(): this {
    this.child.unref();
    (this.child.channel as { unref?: () => void } | undefined)?.unref?.();
    return this;
  }

  /**
   * Runs one request: the statements (killed past `timeoutMs` or on abort), the lease check if it wrote, the
   * commit (killed past `commitBudgetMs`). Rejects with the lease error when the check fails (the child rolled
   * back), and with StatementTimeout, CommitTimeout, the abort reason or ChildStopped otherwise.
   */
  run(body: QueryBody, check: boolean, options: RunOptions): Promise<Done> {
    if (this.stopped) return Promise.reject(this.stopped);
    if (this.pending) return Promise.reject(new Error('database process busy'));
    const id = ++this.nextId;
    const { signal } = options;
    return new Promise<Done>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let refused: Error | undefined;
      const finish = (err: Error | undefined, done?: Done) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (this.pending?.id === id) this.pending = undefined;
        if (err) reject(err);
        else resolve(done!);
      };
      const killWith = (err: Error) => {
        finish(err);
        this.kill();
      };
      const onAbort = () => killWith(signal!.reason instanceof Error ? signal!.reason : new Error('aborted'));
      if (options.timeoutMs !== undefined) timer = setTimeout(() => killWith(new StatementTimeout()), options.timeoutMs);
      this.pending = {
        id,
        fail: (e) => finish(e),
        onMessage: (m) => {
          if (m.type === 'done') return finish(undefined, m);
          if (m.type === 'commit-failed') return killWith(new Error(`commit failed: ${m.message}`));
          if (m.type === 'not-committed') return finish(refused ?? new Error('the lease answer reached the database process too late; rolled back'));
          if (m.type === 'commit?') {
            clearTimeout(timer);
            try {
              options.beforeCommit();
            } catch (err) {
              refused = err as Error;
              return this.send({ type: 'rollback', id });
            }
            const grantedAtUs = monotonicUs();
            timer = setTimeout(() => killWith(new CommitTimeout(`the commit did not finish within ${options.commitBudgetMs} ms`)), options.commitBudgetMs);
            this.send({ type: 'commit', id, grantedAtUs, budgetMs: options.commitBudgetMs });
          }
        },
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.send({ type: 'query', id, body, check });
    });
  }

  /** SIGKILL, wherever the process is (mid-statement, mid-commit); resolves once it has exited. Safe to call twice. */
  kill(): Promise<void> {
    this.stop(new ChildStopped('database process killed'));
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    return this.exited;
  }
}

/** Waits for `work`, unless the signal aborts first. */
function within<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

export interface SqliteTypeOptions {
  dataDir?: string;
  /** Overrides RESOURCE_STATEMENT_TIMEOUT_MS. */
  statementTimeoutMs?: number;
  /** Overrides the commit budget (half the lease safety margin). */
  commitBudgetMs?: number;
}

export function createSqliteType(options: SqliteTypeOptions = {}): ResourceType<SqliteResource> {
  let ready = false;
  let dataDir = options.dataDir ?? '';
  let statementTimeoutMs = options.statementTimeoutMs ?? 5_000;
  let commitBudgetMs = options.commitBudgetMs ?? 500;
  /** Bodies accept() parsed, and whether the sandbox still has to check them (in the child). */
  const parsed = new WeakMap<ResourceRequest, { body: QueryBody; check: boolean }>();
  // One process started ahead of need, bound to no key: opening a key takes it (so a new key does not wait for a
  // fork) and starts the next one. It never serves two keys.
  let spare: DatabaseChild | undefined;
  const startSpare = () => {
    spare = new DatabaseChild().unref();
  };

  function startChild(resource: SqliteResource): DatabaseChild {
    if (!resource.child || !resource.child.alive) {
      const child = spare?.alive ? spare : new DatabaseChild();
      startSpare();
      // The child's own watchdog ends a request a second after this process should have (see sqlite-child.ts).
      resource.child = child.open(resource.file, statementTimeoutMs, statementTimeoutMs + commitBudgetMs + 1_000);
    }
    return resource.child;
  }

  /** Drops the process: what the file holds (after rolling back a hot journal) is what the next request sees. */
  async function discard(resource: SqliteResource, child: DatabaseChild): Promise<void> {
    if (resource.child === child) resource.child = undefined;
    await child.kill();
  }

  return {
    name: 'sqlite',
    concurrency: 1,
    setup({ config }) {
      dataDir = path.resolve(options.dataDir ?? config.resourceDataDir);
      statementTimeoutMs = options.statementTimeoutMs ?? config.resourceStatementTimeoutMs;
      const { safetyMarginMs } = leaseTimings({ heartbeatMs: config.resourceHeartbeatMs, maxMissed: config.resourceMaxMissed });
      commitBudgetMs = options.commitBudgetMs ?? Math.max(1, Math.floor(safetyMarginMs / 2));
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
      const child = startChild(resource);
      try {
        await within(child.ready, ctx.signal);
      } catch (err) {
        await discard(resource, child);
        throw err;
      }
      ctx.logger.info({ file, existed, pid: child.pid }, 'database opened');
      return resource;
    },
    async handle(request, resource, ctx): Promise<ResourceResponse> {
      let prepared = parsed.get(request);
      if (!prepared) {
        // Called without accept() (a caller of the type other than ResourceHost): check in the child.
        if (request.method !== 'POST') throw notPost(request.method);
        prepared = { body: parseQueryBody(request), check: true };
      }
      const { body, check } = prepared;
      const child = startChild(resource);
      let reply: Done;
      try {
        await within(child.ready, ctx.signal);
        reply = await child.run(body, check, { timeoutMs: statementTimeoutMs, signal: ctx.signal, beforeCommit: () => ctx.assertOwner(), commitBudgetMs });
      } catch (err) {
        if ((err as { code?: unknown }).code === 'LEASE_NOT_HELD' && child.alive) {
          // Refused at the commit: the child rolled back and may serve the next request.
          throw err;
        }
        await discard(resource, child);
        if (err instanceof StatementTimeout) {
          ctx.logger.warn({ timeoutMs: statementTimeoutMs }, 'statement interrupted at the time limit; the database is reopened at its last committed state on the next request');
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
        const uncertain = err instanceof CommitTimeout;
        ctx.logger.warn({ err: (err as Error).message }, 'database process failed; restarted from the file on the next request');
        throw new ResourceHttpError(
          503,
          {
            error: 'Database unavailable',
            message: uncertain
              ? `The commit for '${resource.name}' was stopped (${(err as Error).message}); the database holds the state before or after this request: check before retrying a write`
              : `The database engine for '${resource.name}' stopped (${(err as Error).message}); retry, it restarts from the last committed state`,
            code: 'DATABASE_UNAVAILABLE',
          },
          { 'retry-after': '1' },
        );
      }
      const { result, failure } = reply.outcome;
      if (failure) {
        const { status, ...failureBody } = failure;
        throw new ResourceHttpError(status, failureBody, status === 503 ? { 'retry-after': '1' } : undefined);
      }
      return { status: 200, body: { database: resource.name, ...result! } };
    },
    async close(resource) {
      const child = resource.child;
      resource.child = undefined;
      await child?.kill();
    },
  };
}

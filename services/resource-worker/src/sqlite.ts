import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import initSqlJs, { type Database, type SqlJsStatic, type SqlValue } from 'sql.js';
import { ResourceHttpError, type ResourceContext, type ResourceRequest, type ResourceResponse, type ResourceType } from '@lookup/resource-kit';

/**
 * The seed's example done properly: one SQLite database per key `db/<name>`, kept in
 * `<RESOURCE_DATA_DIR>/db/<name>.sqlite`. SQLite is sql.js (SQLite compiled to WebAssembly): no native addon, no
 * install script, nothing downloaded at install time. The database lives in memory while this worker owns the
 * key; after every request that changed it, the whole file is written to a temporary file, fsync'd, and renamed
 * over the old one (then the directory is fsync'd), so a crash or SIGKILL at any moment leaves either the old or
 * the new file, never a torn one. The rename happens only after `assertOwner()` confirms, in the same synchronous
 * step, that this worker still holds the key's lease.
 */

export interface SqliteResource {
  name: string;
  file: string;
  db: Database;
}

export const DB_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

/** `db/<name>` -> name, or a 404 for any other key. */
export function databaseName(key: string): string {
  const m = /^db\/([^/]+)$/.exec(key);
  if (!m || !DB_NAME_RE.test(m[1]!) || m[1]!.includes('..')) {
    throw new ResourceHttpError(404, `no such resource '${key}': this worker serves db/<name> keys, name of letters, digits, '.', '_' and '-'`);
  }
  return m[1]!;
}

type Params = SqlValue[] | Record<string, SqlValue>;

export interface QueryBody {
  query: string;
  params?: Params;
}

/** Validates `{"query": "...", "params": [...] | {...}}`. */
export function parseQueryBody(request: Pick<ResourceRequest, 'body' | 'headers'>): QueryBody {
  const type = request.headers['content-type'];
  if (type !== undefined && !/^application\/json\b/i.test(type)) {
    throw new ResourceHttpError(415, `send the query as application/json, not '${type.slice(0, 100)}'`);
  }
  let body: unknown;
  try {
    body = JSON.parse(request.body.toString('utf8'));
  } catch {
    throw new ResourceHttpError(400, 'the body is not valid JSON; send {"query": "...", "params": [...]}');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ResourceHttpError(400, 'the body must be a JSON object {"query": "...", "params": [...]}');
  const { query, params, ...rest } = body as Record<string, unknown>;
  const extra = Object.keys(rest);
  if (extra.length > 0) throw new ResourceHttpError(400, `unknown field(s): ${extra.join(', ')}`);
  if (typeof query !== 'string' || query.trim() === '') throw new ResourceHttpError(400, '"query" must be a non-empty string');
  if (params === undefined || params === null) return { query };
  const value = (v: unknown, where: string): SqlValue => {
    if (v === null || typeof v === 'string' || typeof v === 'number') return v;
    if (typeof v === 'boolean') return v ? 1 : 0;
    throw new ResourceHttpError(400, `${where} must be a string, number, boolean or null`);
  };
  if (Array.isArray(params)) return { query, params: params.map((v, i) => value(v, `params[${i}]`)) };
  if (typeof params === 'object') {
    const out: Record<string, SqlValue> = {};
    for (const [k, v] of Object.entries(params)) out[/^[:@$]/.test(k) ? k : `:${k}`] = value(v, `params.${k}`);
    return { query, params: out };
  }
  throw new ResourceHttpError(400, '"params" must be an array or an object');
}

function jsonValue(v: SqlValue): unknown {
  return v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v;
}

function stamp(db: Database): string {
  const r = db.exec('SELECT total_changes(), (SELECT schema_version FROM pragma_schema_version), (SELECT user_version FROM pragma_user_version)');
  return JSON.stringify(r[0]?.values[0] ?? []);
}

/** Runs the statement(s): rows of the last statement that returns columns, and the rows changed. */
export function runQuery(db: Database, { query, params }: QueryBody): { columns: string[]; rows: Record<string, unknown>[]; changes: number } {
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
          throw new ResourceHttpError(400, 'SQL error', { message: '"params" can only be used with a single statement' });
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

/** Writes bytes to `file` atomically and durably: temp file, fsync, `beforeRename()`, rename, fsync directory. */
export function writeFileAtomic(file: string, data: Uint8Array, beforeRename: () => void): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'w', 0o644);
  try {
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    beforeRename();
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

export function createSqliteType(options: { dataDir?: string } = {}): ResourceType<SqliteResource> {
  let SQL: SqlJsStatic | undefined;
  let dataDir = options.dataDir ?? '';

  function load(file: string): Database {
    return existsSync(file) ? new SQL!.Database(readFileSync(file)) : new SQL!.Database();
  }

  function persist(resource: SqliteResource, ctx: ResourceContext): void {
    try {
      const data = resource.db.export();
      // Checked again right before the rename, synchronously: nothing else runs in between.
      writeFileAtomic(resource.file, data, () => ctx.assertOwner());
    } catch (err) {
      // Memory is ahead of the file: go back to what is on disk, so what we serve is what is stored.
      resource.db.close();
      resource.db = load(resource.file);
      throw err;
    }
  }

  return {
    name: 'sqlite',
    concurrency: 1,
    async setup({ config }) {
      SQL = await initSqlJs();
      dataDir = path.resolve(options.dataDir ?? config.resourceDataDir);
      mkdirSync(path.join(dataDir, 'db'), { recursive: true });
    },
    open(key, ctx) {
      if (!SQL) throw new Error('sqlite type used before setup()');
      const name = databaseName(key);
      const file = path.join(dataDir, 'db', `${name}.sqlite`);
      const existed = existsSync(file);
      const db = load(file);
      ctx.logger.info({ file, existed }, 'database opened');
      return { name, file, db };
    },
    handle(request, resource, ctx): ResourceResponse {
      if (request.method !== 'POST') {
        throw new ResourceHttpError(405, `use POST with {"query": "...", "params": [...]}, not ${request.method}`);
      }
      const body = parseQueryBody(request);
      const db = resource.db;
      const before = stamp(db);
      let result: ReturnType<typeof runQuery> | undefined;
      let failure: unknown;
      try {
        result = runQuery(db, body);
      } catch (err) {
        failure = err;
      }
      // A transaction must end within its request: the file is written only in autocommit state.
      let openTransaction = false;
      try {
        db.run('BEGIN');
        db.run('ROLLBACK');
      } catch {
        openTransaction = true;
        db.run('ROLLBACK');
      }
      if (stamp(db) !== before) persist(resource, ctx);
      if (failure) {
        if (failure instanceof ResourceHttpError) throw failure;
        if ((failure as { code?: string }).code === 'LEASE_NOT_HELD') throw failure;
        throw new ResourceHttpError(400, 'SQL error', { message: (failure as Error).message });
      }
      if (openTransaction) {
        throw new ResourceHttpError(400, 'SQL error', { message: 'the request left a transaction open; it was rolled back (BEGIN and COMMIT in one request)' });
      }
      return { status: 200, body: { database: resource.name, ...result! } };
    },
    close(resource) {
      resource.db.close();
    },
  };
}

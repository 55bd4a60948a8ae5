// Issue 12, what an operator sees of a running suite: `npm start`'s output is JSON lines (one `service` key each,
// one line per HTTP request with its job id, no config dump at info), the API's job.completed queue is named
// under the namespace, and a busy API_PORT is a configuration error (exit 78, no stack, no restart loop).
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsFixture, startRdapFixture } from './fixtures/index.ts';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { freePort, waitFor } from './support/processes.ts';
import { AMQP_URL, REDIS_URL, REPO_ROOT, fixtureEnv } from './support/env.ts';

let rdap: Awaited<ReturnType<typeof startRdapFixture>>;
let dns: Awaited<ReturnType<typeof startDnsFixture>>;
const namespaces: string[] = [];
beforeAll(async () => {
  [rdap, dns] = await Promise.all([startRdapFixture({}), startDnsFixture({})]);
});
afterAll(async () => {
  await Promise.all([rdap?.close(), dns?.close()]);
  for (const ns of namespaces) await cleanupNamespace(ns);
});

/** The supervisor as `npm start` runs it, over the compiled services, with JSON output. */
function supervisor(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, ['scripts/start.mjs', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, AMQP_URL, REDIS_URL, LOG_FORMAT: 'json', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => void (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => void (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

/** Passive check from a raw connection: 'exists' | 'exclusive' (another connection's private queue) | 'missing'. */
async function queueState(queue: string): Promise<'exists' | 'exclusive' | 'missing'> {
  const conn = await amqp.connect(AMQP_URL);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    try {
      await ch.checkQueue(queue);
      await ch.close();
      return 'exists';
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code === 405) return 'exclusive';
      if (code === 404) return 'missing';
      throw err;
    }
  } finally {
    await conn.close().catch(() => undefined);
  }
}

describe("npm start output, and the API's queues", () => {
  let run: ReturnType<typeof supervisor>;
  let ns: string;
  let api: string;
  let jobId: string;
  const stopped: { code?: number | null } = {};

  beforeAll(async () => {
    ns = newNamespace('ops');
    namespaces.push(ns);
    const port = await freePort();
    api = `http://127.0.0.1:${port}`;
    run = supervisor(['--only', 'api,saga,rdap'], {
      ...fixtureEnv({ rdapUrl: rdap.url, dnsAddress: dns.address }),
      NAMESPACE: ns,
      API_HOST: '127.0.0.1',
      API_PORT: String(port),
    });
    await waitFor(async () => ((await fetch(`${api}/health/ready`).catch(() => undefined))?.status === 200 ? true : undefined), 60_000).catch(
      (err: Error) => {
        run.child.kill('SIGKILL');
        throw new Error(`${err.message}\n${run.stdout().slice(-3000)}\n${run.stderr().slice(-2000)}`);
      },
    );
    await waitFor(async () => (run.stdout().includes('worker ready') && run.stdout().includes('saga ready') ? true : undefined), 30_000);
    const res = await fetch(`${api}/api/lookup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ target: 'status-400.test', services: ['rdap'] }),
    });
    expect(res.status).toBe(202);
    jobId = ((await res.json()) as { jobId: string }).jobId;
    await waitFor(async () => {
      const doc = (await (await fetch(`${api}/api/lookup/${jobId}`)).json()) as { status: string };
      return doc.status === 'Completed' ? true : undefined;
    }, 30_000);
    // The worker's lines about the job: it logs the job's end after announcing it, then its `lookup done` (two writes
    // to its stdout, which the supervisor may pass on in separate reads).
    await waitFor(async () => (run.stdout().includes('"msg":"job completed"') && run.stdout().includes('"msg":"lookup done"') ? true : undefined), 10_000);
    // The API writes a request's line once the response is sent, from another process than the worker: the poll
    // that saw Completed (the first one, when the job is quick) may reach the supervisor's output a moment later.
    await waitFor(async () => (run.stdout().includes(`"url":"/api/lookup/${jobId}"`) ? true : undefined), 10_000);
  });
  afterAll(async () => {
    if (run.child.exitCode === null && run.child.signalCode === null) {
      run.child.kill('SIGTERM');
      await run.exited;
    }
  });

  const lines = () => run.stdout().split('\n').filter(Boolean);
  const parsed = () => lines().map((l) => JSON.parse(l) as Record<string, unknown>);

  it('writes only JSON lines, no [name] prefix, each with exactly one `service` key', () => {
    expect(lines().length).toBeGreaterThan(10);
    for (const line of lines()) {
      expect(() => JSON.parse(line), line).not.toThrow();
      expect(line.match(/"service":/g), line).toHaveLength(1);
    }
  });

  it('names the process in `service` and the lookup service in `lookupService` on the worker; the saga takes no part', () => {
    const about = parsed().filter((l) => l.jobId === jobId);
    expect(about).toContainEqual(expect.objectContaining({ service: 'worker-rdap', lookupService: 'RDAP', msg: 'lookup done' }));
    // The worker records its outcome with the result and announces the job it completes (a job without a tenant:
    // the API dispatched it, and the saga never hears of it).
    expect(about).toContainEqual(expect.objectContaining({ service: 'worker-rdap', lookupService: 'RDAP', msg: 'job completed' }));
    expect(about.filter((l) => l.service === 'saga')).toEqual([]);
  });

  it('logs one line per HTTP request, with the URL, status, duration and job id', () => {
    const requests = parsed().filter((l) => l.service === 'api' && l.msg === 'request' && l.method === 'POST');
    expect(requests).toEqual([expect.objectContaining({ url: '/api/lookup', statusCode: 202, jobId, durationMs: expect.any(Number) })]);
    expect(parsed().filter((l) => l.msg === 'incoming request' || l.msg === 'request completed')).toEqual([]);
    const polls = parsed().filter((l) => l.msg === 'request' && l.url === `/api/lookup/${jobId}`);
    expect(polls.length).toBeGreaterThan(0);
    for (const p of polls) expect(p).toMatchObject({ method: 'GET', statusCode: 200, jobId });
  });

  it('starts with one compact line per process, the configuration only at debug level', () => {
    const starting = parsed().filter((l) => l.msg === 'starting');
    expect(starting.map((l) => l.service).sort()).toEqual(['api', 'saga', 'worker-rdap']);
    for (const l of starting) expect(l).toMatchObject({ namespace: ns });
    expect(parsed().filter((l) => 'config' in l)).toEqual([]);
  });

  it('the API consumes nothing from RabbitMQ: no private queue per replica (its metrics of finished jobs come from Redis)', async () => {
    const starting = parsed().find((l) => l.service === 'api' && l.msg === 'starting');
    const instanceId = String(starting?.instanceId);
    expect(instanceId).toMatch(/^[A-Za-z0-9_-]+-\d+-[0-9a-f]{6}$/);
    expect(parsed().filter((l) => l.service === 'api' && l.msg === 'consuming')).toEqual([]);
    // The queue earlier versions declared for job.completed.
    expect(await queueState(`${ns}.api.${instanceId}`)).toBe('missing');
    run.child.kill('SIGTERM');
    stopped.code = await run.exited;
    expect(stopped.code).toBe(0);
  });
});

describe('a busy API_PORT', () => {
  let blocker: Server;
  let port: number;
  beforeAll(async () => {
    port = await freePort();
    blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    await new Promise((resolve) => blocker.close(resolve));
  });

  it('says "API_PORT <port> is in use", exits 78 without a stack trace, and the supervisor does not restart it', async () => {
    const ns = newNamespace('ops');
    namespaces.push(ns);
    const run = supervisor(['--only', 'api'], { NAMESPACE: ns, API_HOST: '127.0.0.1', API_PORT: String(port) });
    const timer = setTimeout(() => run.child.kill('SIGKILL'), 60_000);
    const code = await run.exited;
    clearTimeout(timer);
    const all = `${run.stdout()}\n${run.stderr()}`;
    expect(code, all).toBe(78);
    const fatal = run.stdout().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.level === 'fatal');
    expect(fatal).toMatchObject({ service: 'api', msg: expect.stringMatching(new RegExp(`^API_PORT ${port} is in use`)), code: 'EADDRINUSE' });
    expect(all).not.toMatch(/^\s+at /m);
    expect(all.match(/api started \(pid/g)).toHaveLength(1);
    expect(all).toContain('configuration error); not restarting');
  });
});

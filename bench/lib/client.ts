import { Dispatcher, Pool } from 'undici';

/** How a job ended, as the client saw it. */
export type Outcome =
  | { state: 'completed' }
  | { state: 'failed'; reason: string }
  | { state: 'lost'; reason: string };

/**
 * How the client learns that a job reached a terminal state. Polling GET /api/lookup/{id} is what exists
 * today; a job event stream (SSE or WebSocket) can implement the same interface and replace it.
 */
export interface CompletionDetector {
  readonly name: string;
  /** Requests (or stream messages) spent detecting completions so far. */
  readonly requests: number;
  /** Resolves once the job is terminal, or as 'lost' at `deadline` (performance.now() ms). */
  wait(job: { jobId: string; statusUrl: string }, deadline: number): Promise<Outcome>;
  close(): Promise<void>;
}

export interface HttpClient {
  pool: Dispatcher;
  requests: number;
}

/**
 * Spreads requests over several API replicas' pools in turn (round-robin): what a load balancer in front of the
 * replicas would do. Every request of a job may go to a different replica (any replica serves any job).
 */
export class RoundRobin extends Dispatcher {
  private next = 0;
  constructor(readonly pools: Dispatcher[]) {
    super();
  }
  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const pool = this.pools[this.next++ % this.pools.length]!;
    return pool.dispatch(options, handler);
  }
  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    const done = Promise.all(this.pools.map((p) => p.close())).then(() => undefined);
    if (!callback) return done;
    void done.then(callback);
  }
}

/**
 * One keep-alive connection pool per API URL (several: round-robin over them); enough connections in all that no
 * job waits for a socket.
 */
export function createHttpClient(apiUrls: string | string[], connections: number): HttpClient {
  const urls = typeof apiUrls === 'string' ? [apiUrls] : apiUrls;
  const each = urls.length > 1 ? Math.ceil(connections / urls.length) + 2 : connections;
  const pools = urls.map((u) => new Pool(new URL(u).origin, { connections: each, pipelining: 1, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000 }));
  return { pool: pools.length === 1 ? pools[0]! : new RoundRobin(pools), requests: 0 };
}

interface JobDocumentLite {
  status: string;
  results: { serviceType: string; status: string; errorMessage: string | null }[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls the job's statusUrl every `intervalMs` (measured from the previous answer: never two polls of one job at once). */
export function createPollingDetector(http: HttpClient, intervalMs: number): CompletionDetector {
  let requests = 0;
  return {
    name: `polling GET every ${intervalMs} ms`,
    get requests() {
      return requests;
    },
    async wait({ statusUrl }, deadline) {
      let last = 'never answered';
      for (;;) {
        if (performance.now() > deadline) return { state: 'lost', reason: `not Completed before the timeout (last seen: ${last})` };
        requests++;
        try {
          const res = await http.pool.request({ path: statusUrl, method: 'GET', headersTimeout: 10_000, bodyTimeout: 10_000 });
          if (res.statusCode === 200) {
            const doc = (await res.body.json()) as JobDocumentLite;
            last = doc.status;
            const outcome = verdict(doc);
            if (outcome) return outcome;
          } else {
            last = `HTTP ${res.statusCode}`;
            await res.body.dump();
          }
        } catch (err) {
          last = `request error ${(err as Error).message}`;
        }
        await sleep(intervalMs);
      }
    },
    async close() {},
  };
}

/** The verdict on a terminal job document, shared by every detector. */
function verdict(doc: JobDocumentLite): Outcome | undefined {
  if (doc.status === 'Completed') {
    const bad = doc.results.filter((r) => r.status !== 'Succeeded');
    return bad.length === 0
      ? { state: 'completed' }
      : { state: 'failed', reason: bad.map((r) => `${r.serviceType} ${r.status}: ${r.errorMessage ?? ''}`).join('; ') };
  }
  if (doc.status === 'Cancelled') return { state: 'failed', reason: 'job Cancelled' };
  return undefined;
}

/**
 * Listens on the job's event stream (GET {statusUrl}/events, server-sent events): one request per job,
 * answered the moment the job finishes. This is what a real client would use once the stream exists.
 */
export function createSseDetector(http: HttpClient): CompletionDetector {
  let requests = 0;
  return {
    name: 'job event stream (SSE)',
    get requests() {
      return requests;
    },
    async wait({ statusUrl }, deadline) {
      let last = 'never answered';
      while (performance.now() < deadline) {
        requests++;
        const remaining = Math.max(1, Math.ceil(deadline - performance.now()));
        try {
          const res = await http.pool.request({ path: `${statusUrl}/events`, method: 'GET', headersTimeout: remaining, bodyTimeout: remaining });
          if (res.statusCode !== 200) {
            last = `HTTP ${res.statusCode}`;
            await res.body.dump();
            await sleep(50);
            continue;
          }
          let buffer = '';
          for await (const chunk of res.body) {
            buffer += chunk.toString();
            let end: number;
            while ((end = buffer.indexOf('\n\n')) !== -1) {
              const block = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              const event = /^event: (.+)$/m.exec(block)?.[1];
              const data = /^data: (.+)$/m.exec(block)?.[1];
              // `result` events (one per service) carry a service's result, not the job: only the job's own events decide.
              if (!event || !data || event === 'result') continue;
              const doc = JSON.parse(data) as JobDocumentLite;
              last = doc.status;
              const outcome = verdict(doc);
              if (outcome) {
                res.body.destroy();
                return outcome;
              }
            }
          }
        } catch (err) {
          last = `stream error ${(err as Error).message}`;
          await sleep(50);
        }
      }
      return { state: 'lost', reason: `not Completed before the timeout (last seen: ${last})` };
    },
    async close() {},
  };
}

export interface JobRecord {
  /** Start of the job as the client counts it: the POST (closed loop) or its scheduled time (open loop). */
  startedAt: number;
  /** The 202 arrived. */
  acceptedAt?: number;
  /** The client learned the terminal state. */
  endedAt?: number;
  outcome?: Outcome;
}

export interface LoadOptions {
  http: HttpClient;
  detector: CompletionDetector;
  target: string;
  services: string[];
  /** Per job, from its start; past it the job counts as lost. */
  timeoutMs: number;
}

async function runJob(o: LoadOptions, record: JobRecord): Promise<void> {
  const body = JSON.stringify({ target: o.target, services: o.services });
  let accepted: { jobId: string; statusUrl: string };
  try {
    o.http.requests++;
    const res = await o.http.pool.request({
      path: '/api/lookup',
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    if (res.statusCode !== 202) {
      const text = await res.body.text();
      record.endedAt = performance.now();
      record.outcome = { state: 'failed', reason: `submit answered ${res.statusCode}: ${text.slice(0, 200)}` };
      return;
    }
    accepted = (await res.body.json()) as { jobId: string; statusUrl: string };
  } catch (err) {
    record.endedAt = performance.now();
    record.outcome = { state: 'failed', reason: `submit failed: ${(err as Error).message}` };
    return;
  }
  record.acceptedAt = performance.now();
  record.outcome = await o.detector.wait(accepted, record.startedAt + o.timeoutMs);
  record.endedAt = performance.now();
}

/** Closed loop: `inflight` jobs at all times until `jobs` have been started (or `durationMs` has passed). */
export async function closedLoop(o: LoadOptions & { jobs: number; inflight: number; durationMs?: number }): Promise<{ records: JobRecord[]; wallMs: number }> {
  const records: JobRecord[] = [];
  const t0 = performance.now();
  const stopAt = o.durationMs ? t0 + o.durationMs : Infinity;
  const lane = async () => {
    while (records.length < o.jobs && performance.now() < stopAt) {
      const r: JobRecord = { startedAt: performance.now() };
      records.push(r);
      await runJob(o, r);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, o.inflight) }, lane));
  return { records, wallMs: performance.now() - t0 };
}

/**
 * Open loop: job i is due at t0 + i/rate whatever happened to the others. Latency counts from the due
 * time, so a client falling behind (or a stalled API) shows up in the figures (no coordinated omission).
 */
export async function openLoop(o: LoadOptions & { jobs: number; rate: number; durationMs?: number }): Promise<{ records: JobRecord[]; wallMs: number }> {
  const records: JobRecord[] = [];
  const running: Promise<void>[] = [];
  const t0 = performance.now();
  const total = o.durationMs ? Math.min(o.jobs, Math.ceil((o.durationMs / 1000) * o.rate)) : o.jobs;
  const gap = 1000 / o.rate;
  for (let i = 0; i < total; ) {
    const now = performance.now();
    while (i < total && t0 + i * gap <= now) {
      const r: JobRecord = { startedAt: t0 + i * gap };
      records.push(r);
      running.push(runJob(o, r));
      i++;
    }
    if (i < total) await sleep(Math.max(0, t0 + i * gap - performance.now()));
  }
  await Promise.all(running);
  return { records, wallMs: performance.now() - t0 };
}

/**
 * Bulk mode (--batch N): jobs are submitted N at a time with POST /api/lookup/batch, `batchesInFlight` batches at
 * a time (a new batch starts as soon as one has finished), and each batch is followed with
 * GET /api/lookup/batch/{id} every `pollMs` until none of its jobs is Pending or Processing. A job starts with
 * its batch's POST and ends when a poll first shows it finished. Every job is then accounted for by reading its
 * document (after the measured window; see verifyBatchJobs): Completed with every result Succeeded, or failed.
 */
export async function batchLoop(
  o: LoadOptions & { jobs: number; batchSize: number; batchesInFlight: number; pollMs: number; durationMs?: number },
): Promise<{ records: (JobRecord & { jobId?: string })[]; wallMs: number; polls: number }> {
  const records: (JobRecord & { jobId?: string })[] = [];
  const polls = { count: 0 };
  const t0 = performance.now();
  const stopAt = o.durationMs ? t0 + o.durationMs : Infinity;
  const lane = async () => {
    while (records.length < o.jobs && performance.now() < stopAt) {
      const size = Math.min(o.batchSize, o.jobs - records.length);
      const startedAt = performance.now();
      const batch: (JobRecord & { jobId?: string })[] = Array.from({ length: size }, () => ({ startedAt }));
      records.push(...batch);
      await runBatch(o, batch, polls);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, o.batchesInFlight) }, lane));
  return { records, wallMs: performance.now() - t0, polls: polls.count };
}

async function runBatch(o: LoadOptions & { pollMs: number }, batch: (JobRecord & { jobId?: string })[], polls: { count: number }): Promise<void> {
  const fail = (reason: string) => {
    const at = performance.now();
    for (const r of batch) if (!r.outcome) Object.assign(r, { endedAt: at, outcome: { state: 'failed', reason } });
  };
  const body = JSON.stringify({ items: batch.map(() => ({ target: o.target })), services: o.services });
  let accepted: { batchId: string; jobs: { index: number; jobId: string }[]; rejected: { index: number; error: { message: string } }[] };
  try {
    o.http.requests++;
    const res = await o.http.pool.request({
      path: '/api/lookup/batch',
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    });
    if (res.statusCode !== 202) return fail(`batch submit answered ${res.statusCode}: ${(await res.body.text()).slice(0, 200)}`);
    accepted = (await res.body.json()) as typeof accepted;
  } catch (err) {
    return fail(`batch submit failed: ${(err as Error).message}`);
  }
  const acceptedAt = performance.now();
  for (const j of accepted.jobs) Object.assign(batch[j.index]!, { jobId: j.jobId, acceptedAt });
  for (const r of accepted.rejected) Object.assign(batch[r.index]!, { endedAt: acceptedAt, outcome: { state: 'failed', reason: `rejected: ${r.error.message}` } });

  const deadline = batch[0]!.startedAt + o.timeoutMs;
  const open = new Map(accepted.jobs.map((j) => [j.jobId, batch[j.index]!]));
  let last = 'never answered';
  while (open.size > 0) {
    if (performance.now() > deadline) {
      for (const r of open.values()) Object.assign(r, { endedAt: performance.now(), outcome: { state: 'lost', reason: `not finished before the timeout (last seen: ${last})` } });
      return;
    }
    await sleep(o.pollMs);
    polls.count++;
    try {
      const res = await o.http.pool.request({ path: `/api/lookup/batch/${accepted.batchId}`, method: 'GET', headersTimeout: 10_000, bodyTimeout: 10_000 });
      if (res.statusCode !== 200) {
        last = `HTTP ${res.statusCode}`;
        await res.body.dump();
        continue;
      }
      const doc = (await res.body.json()) as { jobs: { jobId: string; status: string }[] };
      const now = performance.now();
      for (const j of doc.jobs) {
        const r = open.get(j.jobId);
        if (!r || j.status === 'Pending' || j.status === 'Processing') continue;
        last = j.status;
        r.endedAt = now;
        r.outcome = j.status === 'Completed' ? { state: 'completed' } : { state: 'failed', reason: `job ${j.status}` };
        open.delete(j.jobId);
      }
    } catch (err) {
      last = `request error ${(err as Error).message}`;
    }
  }
}

/**
 * Reads the document of every job a batch run saw Completed (`concurrency` at a time), and marks it failed when a
 * result is not Succeeded: the batch view only has the job's status, this checks every result. Runs after the
 * measured window.
 */
export async function verifyBatchJobs(http: HttpClient, records: (JobRecord & { jobId?: string })[], concurrency = 16): Promise<void> {
  const todo = records.filter((r) => r.jobId && r.outcome?.state === 'completed');
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const r = todo[next++]!;
      try {
        const res = await http.pool.request({ path: `/api/lookup/${r.jobId}`, method: 'GET', headersTimeout: 10_000, bodyTimeout: 10_000 });
        if (res.statusCode !== 200) {
          await res.body.dump();
          r.outcome = { state: 'lost', reason: `job document answered ${res.statusCode}` };
          continue;
        }
        r.outcome = verdict((await res.body.json()) as JobDocumentLite) ?? { state: 'failed', reason: 'not terminal when verified' };
      } catch (err) {
        r.outcome = { state: 'lost', reason: `job document unreadable: ${(err as Error).message}` };
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

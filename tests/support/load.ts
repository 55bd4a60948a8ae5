import type { Redis } from 'ioredis';
import { rawRedis } from './redis.ts';
import type { JobDocument } from '@lookup/contracts';
import { keys } from '@lookup/store';
import { REDIS_URL } from './env.ts';

export interface LoadResult {
  /** Job ids the API accepted (202). */
  accepted: string[];
  /** Submissions refused (503/429) after every retry: never accepted, so not lost. */
  refused: number;
}

/**
 * Submits `jobs` lookups with `concurrency` in flight, calling `during` once `startFaultAfter` are accepted.
 * A 503 or 429 is retried after its Retry-After (capped), as a well-behaved client would.
 */
export async function submitLoad(apiUrl: string, options: {
  jobs: number;
  concurrency: number;
  body: unknown;
  during?: () => Promise<void>;
  startFaultAfter?: number;
}): Promise<LoadResult & { fault?: Promise<void> }> {
  const accepted: string[] = [];
  let refused = 0;
  let next = 0;
  let fault: Promise<void> | undefined;
  const faultAt = options.startFaultAfter ?? Math.floor(options.jobs / 4);
  async function one(): Promise<void> {
    for (let attempt = 0; attempt < 40; attempt++) {
      try {
        const res = await fetch(`${apiUrl}/api/lookup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(options.body) });
        if (res.status === 202) {
          accepted.push(((await res.json()) as { jobId: string }).jobId);
          if (accepted.length === faultAt && options.during) fault = options.during();
          return;
        }
        await res.arrayBuffer();
        const wait = Math.min(2, Number(res.headers.get('retry-after') ?? 1));
        await new Promise((r) => setTimeout(r, wait * 1000));
      } catch {
        await new Promise((r) => setTimeout(r, 500)); // the API itself unreachable for a moment
      }
    }
    refused++;
  }
  await Promise.all(Array.from({ length: options.concurrency }, async () => {
    while (next < options.jobs) {
      next++;
      await one();
    }
  }));
  return { accepted, refused, fault };
}

/** Polls every job until it is Completed or Cancelled, or the timeout passes. */
export async function awaitJobs(apiUrl: string, jobIds: string[], timeoutMs = 90_000): Promise<Map<string, JobDocument>> {
  const docs = new Map<string, JobDocument>();
  const deadline = Date.now() + timeoutMs;
  let pending = [...jobIds];
  while (pending.length > 0 && Date.now() < deadline) {
    const still: string[] = [];
    for (let i = 0; i < pending.length; i += 32) {
      await Promise.all(pending.slice(i, i + 32).map(async (id) => {
        try {
          const res = await fetch(`${apiUrl}/api/lookup/${id}`);
          if (res.status === 200) {
            const doc = (await res.json()) as JobDocument;
            docs.set(id, doc);
            if (doc.status === 'Completed' || doc.status === 'Cancelled') return;
          } else {
            await res.arrayBuffer();
          }
        } catch {
          // API restarting or unreachable: try again
        }
        still.push(id);
      }));
    }
    pending = still;
    if (pending.length > 0) await new Promise((r) => setTimeout(r, 250));
  }
  return docs;
}

export interface LoadReport {
  submitted: number;
  terminal: number;
  lost: number;
  /** Jobs whose completion counter exceeds their service count: an outcome counted twice. */
  recordedTwice: number;
  /** Services whose result is not Succeeded (timed out, failed). */
  notSucceeded: number;
  /** Completed jobs whose end was never announced (job.completed published: the job's `notified` field). */
  unannounced: number;
}

/** What the user sees, plus a raw Redis check of the completion counters (on `raw`, else a client of REDIS_URL). */
export async function report(namespace: string, jobIds: string[], docs: Map<string, JobDocument>, servicesPerJob: number, raw?: Redis): Promise<LoadReport> {
  const redis = raw ?? rawRedis();
  try {
    const k = keys(namespace);
    const counters = await Promise.all(jobIds.map((id) => redis.hmget(k.job(id), 'done', 'total', 'notified')));
    let terminal = 0;
    let notSucceeded = 0;
    let unannounced = 0;
    for (const [i, id] of jobIds.entries()) {
      const doc = docs.get(id);
      if (!doc || (doc.status !== 'Completed' && doc.status !== 'Cancelled')) continue;
      terminal++;
      if (doc.status === 'Completed' && counters[i]![2] !== '1') unannounced++;
      if (doc.results.length !== servicesPerJob) notSucceeded += servicesPerJob - doc.results.length;
      notSucceeded += doc.results.filter((r) => r.status !== 'Succeeded').length;
    }
    return {
      submitted: jobIds.length,
      terminal,
      lost: jobIds.length - terminal,
      recordedTwice: counters.filter(([done, total]) => Number(done) > Number(total)).length,
      notSucceeded,
      unannounced,
    };
  } finally {
    if (!raw) redis.disconnect();
  }
}

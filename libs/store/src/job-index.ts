import { serviceName, type JobStatus, type ServiceName, type ServiceType, type TargetType } from '@lookup/contracts';
import type { Redis } from './redis.ts';
import type { Keys } from './keys.ts';

/**
 * The job listing (GET /api/lookup) over its Redis indexes (keys.ts jobIndex: one per job shard, so the scripts that
 * write it, create-job.lua and create-batch.lua through includes/index-job.lua, stay in one slot on Redis Cluster):
 * sorted sets of score 0 whose members are `<createdAt epoch ms, 16 digits>:<jobId>`, merged here. Lexicographic
 * order is creation order across all shards, so a member is a cursor that stays exact while new jobs arrive (they
 * sort after it) and pages never overlap (each shard is read from an exclusive bound), even for the many jobs of a
 * batch created in the same millisecond.
 */

const MS_DIGITS = 16;
/** An index member: what a cursor carries (job ids are UUIDs). */
export const JOB_INDEX_MEMBER = /^\d{16}:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Index entries one listing call examines at most; a filtered page that finds fewer jobs says where to go on. */
export const JOB_LIST_SCAN_LIMIT = 1000;
const SCAN_CHUNK = 200;

const padMs = (ms: number) => String(Math.max(0, Math.floor(ms))).padStart(MS_DIGITS, '0');

/** The index member of a job created at `createdAt` (ISO 8601). */
export function jobIndexMember(createdAt: string, jobId: string): string {
  return `${padMs(Date.parse(createdAt))}:${jobId}`;
}

/** The trim cutoff at `nowMs`: entries created before it belong to jobs whose hashes have expired. */
export function jobIndexCutoff(nowMs: number, ttlSeconds: number): string {
  return padMs(nowMs - ttlSeconds * 1000);
}

export interface JobListQuery {
  status?: JobStatus;
  /** An exact (normalised) target. */
  target?: string;
  /** Only jobs created at or after this time (epoch ms). */
  sinceMs?: number;
  limit: number;
  /** Continue after this index member (a previous page's `next`). */
  after?: string;
}

export interface JobSummary {
  jobId: string;
  target: string;
  targetType: TargetType;
  status: JobStatus;
  createdAt: string;
  completedAt?: string;
  requestedServices: ServiceName[];
}

export interface JobListPage {
  /** Newest first. */
  jobs: JobSummary[];
  /** The index member to continue after, or null when no job is left to examine. */
  next: string | null;
}

const FIELDS = ['jobId', 'target', 'targetType', 'status', 'createdAt', 'completedAt', 'services'] as const;

function toSummary(values: (string | null)[]): JobSummary | undefined {
  const [jobId, target, targetType, status, createdAt, completedAt, services] = values;
  if (!jobId || !status) return undefined; // expired or discarded since it was indexed
  const summary: JobSummary = {
    jobId,
    target: target ?? '',
    targetType: (targetType ?? 'IPAddress') as TargetType,
    status: status as JobStatus,
    createdAt: createdAt ?? '',
    requestedServices: (services ? services.split(',') : []).map((s) => serviceName(Number(s) as ServiceType)),
  };
  if (completedAt) summary.completedAt = completedAt;
  return summary;
}

/** The summary fields of each member's job: one HMGET each, sent together (a cluster client routes each to the node of
 *  its job's shard, where a pipeline would have to stay on one node). */
async function readSummaries(redis: Redis, k: Keys, members: string[]): Promise<(string | null)[][]> {
  return Promise.all(members.map((m) => redis.hmget(k.job(m.slice(MS_DIGITS + 1)), ...FIELDS)));
}

const newestFirst = (a: string, b: string) => (a < b ? 1 : a > b ? -1 : 0);

/**
 * The newest `count` members between `min` and `max` over every shard's index: one ZREVRANGEBYLEX per shard, as
 * separate commands (auto-pipelining sends them together; a cluster client sends each to its node), merged. The
 * global newest `count` are among the union of each shard's newest `count`; fewer than `count` means none is left.
 */
async function newestMembers(redis: Redis, k: Keys, max: string, min: string, count: number): Promise<string[]> {
  const perShard = await Promise.all(k.allJobIndexes.map((index) => redis.zrevrangebylex(index, max, min, 'LIMIT', 0, count)));
  return perShard.flat().sort(newestFirst).slice(0, count);
}

/**
 * One page of jobs, newest first, matching `status` and `target` (read from the job hashes). Examines at most
 * JOB_LIST_SCAN_LIMIT index entries: a filtered page may then hold fewer than `limit` jobs, with `next` set.
 */
export async function listJobs(redis: Redis, k: Keys, q: JobListQuery): Promise<JobListPage> {
  const min = q.sinceMs !== undefined ? `[${padMs(q.sinceMs)}` : '-';
  let max = q.after !== undefined ? `(${q.after}` : '+';
  const filtered = q.status !== undefined || q.target !== undefined;
  const jobs: JobSummary[] = [];
  let lastFound = '';
  let scanned = 0;
  for (;;) {
    // Unfiltered: one entry more than the page needs tells whether another page exists.
    const want = filtered ? Math.min(SCAN_CHUNK, JOB_LIST_SCAN_LIMIT - scanned) : q.limit - jobs.length + 1;
    const members = await newestMembers(redis, k, max, min, want);
    const rows = await readSummaries(redis, k, members);
    for (let i = 0; i < members.length; i++) {
      if (jobs.length === q.limit) return { jobs, next: lastFound };
      scanned++;
      const job = toSummary(rows[i]!);
      if (!job || (q.status !== undefined && job.status !== q.status) || (q.target !== undefined && job.target !== q.target)) continue;
      jobs.push(job);
      lastFound = members[i]!;
    }
    if (members.length < want) return { jobs, next: null };
    max = `(${members[members.length - 1]}`;
    if (scanned >= JOB_LIST_SCAN_LIMIT) return { jobs, next: members[members.length - 1]! };
  }
}

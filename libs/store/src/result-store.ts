import type { JobStatus, ResultLocation, ServiceType, StoredResult } from '@lookup/contracts';
import { awaitReplicas } from '@lookup/contracts';
import { defineScript, type Redis } from './redis.ts';
import { keys as makeKeys } from './keys.ts';

export interface ResultStoreDeps {
  redis: Redis;
  namespace: string;
  ttlSeconds: number;
}

export interface SaveResultOutcome {
  location: ResultLocation;
  /** The result stored at the location: ours, or the one a previous delivery stored first. */
  result: StoredResult;
  /** False when an earlier delivery of the same command had already stored a result. */
  created: boolean;
}

/** Why saveIfOpen stored nothing: the job is gone, or finished (Completed or Cancelled). */
export interface SaveSkipped {
  skipped: 'missing' | 'finished';
  status?: JobStatus;
}

export type ResultStore = ReturnType<typeof createResultStore>;

/**
 * Where workers put lookup results. One key per (job, service): the first result stored wins
 * (SET NX GET, one round trip), so a redelivered command never overwrites a result with a later one
 * and every event about it describes the same stored result.
 */
export function createResultStore({ redis, namespace, ttlSeconds }: ResultStoreDeps) {
  const k = makeKeys(namespace);
  const saveScript = defineScript(redis, 'save-result');

  function locate(jobId: string, service: ServiceType): ResultLocation {
    return { storage: 'redis', key: k.result(jobId, service) };
  }

  async function save(result: StoredResult): Promise<SaveResultOutcome> {
    const location = locate(result.jobId, result.serviceType);
    const previous = await redis.set(location.key, JSON.stringify(result), 'EX', ttlSeconds, 'NX', 'GET');
    await awaitReplicas(redis);
    if (previous === null) return { location, result, created: true };
    return { location, result: JSON.parse(previous) as StoredResult, created: false };
  }

  /**
   * save(), but only while the job is open: nothing is stored for a job that is gone or already finished
   * (Completed or Cancelled). The job's status check and the write are one round trip (a Lua script).
   */
  async function saveIfOpen(result: StoredResult): Promise<SaveResultOutcome | SaveSkipped> {
    const location = locate(result.jobId, result.serviceType);
    const [outcome, detail] = (await saveScript([k.job(result.jobId), location.key], [JSON.stringify(result), ttlSeconds])) as [string, string];
    switch (outcome) {
      case 'created':
        return { location, result, created: true };
      case 'exists':
        return { location, result: JSON.parse(detail) as StoredResult, created: false };
      case 'finished':
        return { skipped: 'finished', status: detail as JobStatus };
      default:
        return { skipped: 'missing' };
    }
  }

  async function find(jobId: string, service: ServiceType): Promise<StoredResult | undefined> {
    const raw = await redis.get(locate(jobId, service).key);
    return raw ? (JSON.parse(raw) as StoredResult) : undefined;
  }

  return { locate, save, saveIfOpen, find };
}

import type { JobStatus, ResultLocation, ServiceType, StoredResult } from '@lookup/contracts';
import { awaitReplicas, outcomeOf } from '@lookup/contracts';
import { defineScript, type Redis } from './redis.ts';
import { keys as makeKeys } from './keys.ts';
import { endAnswer, type OutcomeDisposition, type OutcomeRecord, type RecordOutcomeResult } from './job-store.ts';

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
  /**
   * saveIfOpen only, when it stored the result: the outcome recorded on the job in the same step (the answer of the
   * saga's JobStore.recordOutcome). Absent when an earlier delivery had stored one (nothing recorded here).
   */
  recorded?: RecordOutcomeResult;
}

/** Why saveIfOpen stored nothing: the job is gone, finished (Completed or Cancelled), or did not request the service. */
export interface SaveSkipped {
  skipped: 'missing' | 'finished' | 'unrequested';
  status?: JobStatus;
}

/**
 * Whether a saved result must still be announced: unless its outcome was recorded on the job in the same step and
 * did not complete it. The outcome that completes the job is announced (by the worker itself for a job without a
 * tenant, else by task.completed to the saga: command-handler.ts), and so is one this step did not record (an
 * earlier delivery stored the result: task.completed).
 */
export function needsAnnouncing(saved: SaveResultOutcome): boolean {
  const r = saved.recorded;
  return !r || r.disposition !== 'recorded' || r.status === 'Completed';
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
   * save(), but only while the job is open and requested the service: nothing is stored for a job that is gone or
   * already finished (Completed or Cancelled). A stored result's outcome is recorded on the job in the same step,
   * as the saga records a task.completed (`recorded`; `at` stamps the job's completion if it completes it). One
   * round trip (lua/save-result.lua).
   */
  async function saveIfOpen(result: StoredResult, at = new Date().toISOString()): Promise<SaveResultOutcome | SaveSkipped> {
    const { jobId, serviceType } = result;
    const location = locate(jobId, serviceType);
    const outcome: OutcomeRecord = { ...outcomeOf(result), location };
    const answer = (await saveScript(
      [k.job(jobId), location.key, k.deadlines(jobId), k.jobEvents(jobId)],
      [JSON.stringify(result), ttlSeconds, serviceType, JSON.stringify(outcome), at, jobId],
    )) as string[];
    switch (answer[0]) {
      case 'created':
        return { location, result, created: true, recorded: endAnswer<OutcomeDisposition>(answer.slice(2)) };
      case 'exists':
        return { location, result: JSON.parse(answer[1]!) as StoredResult, created: false };
      case 'finished':
        return { skipped: 'finished', status: answer[1] as JobStatus };
      case 'unrequested':
        return { skipped: 'unrequested', status: answer[1] as JobStatus };
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

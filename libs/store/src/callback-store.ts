import type { CallbackAttempt, CallbackEvent, CallbackState } from '@lookup/contracts';
import type { Redis } from './redis.ts';
import { keys as makeKeys } from './keys.ts';

export interface CallbackStoreDeps {
  redis: Redis;
  namespace: string;
  /** JOB_TTL_SECONDS: a delivery's record lives as long as its job. */
  ttlSeconds: number;
}

export interface CallbackRecord {
  state: CallbackState | undefined;
  deliveryId: string | null;
  attempts: CallbackAttempt[];
}

/** The most attempts kept per delivery (a replayed dead letter adds more). */
const MAX_RECORDED_ATTEMPTS = 100;

export type CallbackStore = ReturnType<typeof createCallbackStore>;

/**
 * Completion-callback deliveries as recorded (`<ns>:callback:<jobId>` and its `:attempts` list): the dispatcher
 * claims a job's delivery once, appends every attempt, and sets its state; GET /api/lookup/{jobId}/callbacks reads it.
 */
export function createCallbackStore({ redis, namespace, ttlSeconds }: CallbackStoreDeps) {
  const k = makeKeys(namespace);

  /** Claims the job's delivery for `event`: true the first time, false when it was already claimed. */
  async function claim(jobId: string, deliveryId: string, event: CallbackEvent): Promise<boolean> {
    const [[, created]] = (await redis
      .multi()
      .hsetnx(k.callback(jobId), 'deliveryId', deliveryId)
      .hsetnx(k.callback(jobId), 'state', 'pending')
      .hsetnx(k.callback(jobId), 'event', event)
      .expire(k.callback(jobId), ttlSeconds)
      .exec()) as [[Error | null, number]];
    return created === 1;
  }

  async function recordAttempt(jobId: string, attempt: CallbackAttempt, state: CallbackState): Promise<void> {
    await redis
      .multi()
      .rpush(k.callbackAttempts(jobId), JSON.stringify(attempt))
      .ltrim(k.callbackAttempts(jobId), -MAX_RECORDED_ATTEMPTS, -1)
      .expire(k.callbackAttempts(jobId), ttlSeconds)
      .hset(k.callback(jobId), 'state', state)
      .expire(k.callback(jobId), ttlSeconds)
      .exec();
  }

  async function setState(jobId: string, state: CallbackState): Promise<void> {
    await redis.multi().hset(k.callback(jobId), 'state', state).expire(k.callback(jobId), ttlSeconds).exec();
  }

  async function get(jobId: string): Promise<CallbackRecord> {
    const [hash, list] = await Promise.all([redis.hgetall(k.callback(jobId)), redis.lrange(k.callbackAttempts(jobId), 0, -1)]);
    const attempts: CallbackAttempt[] = [];
    for (const raw of list) {
      try {
        attempts.push(JSON.parse(raw) as CallbackAttempt);
      } catch {
        // a record that is not JSON is left out
      }
    }
    return { state: hash.state as CallbackState | undefined, deliveryId: hash.deliveryId ?? null, attempts };
  }

  return { claim, recordAttempt, setState, get };
}

import { createHash } from 'node:crypto';
import type { Redis } from './redis.ts';
import { keys as makeKeys } from './keys.ts';

export type IdempotencyClaim =
  | { state: 'new' }
  | { state: 'replay'; jobId: string }
  | { state: 'conflict'; jobId: string };

/**
 * Idempotency keys for job submission: the first request with a key claims it for `ttlSeconds` (one
 * SET NX GET); a later request with the same key and the same body gets the same job, with a different
 * body a conflict. Keys are per client, so two clients never collide.
 */
export function createIdempotencyStore({ redis, namespace, ttlSeconds }: { redis: Redis; namespace: string; ttlSeconds: number }) {
  const k = makeKeys(namespace);
  const keyFor = (client: string, key: string) => k.idempotency(hash(client).slice(0, 16), hash(key).slice(0, 32));

  async function claim(client: string, key: string, fingerprint: string, jobId: string): Promise<IdempotencyClaim> {
    const value = `${hash(fingerprint)} ${jobId}`;
    const previous = await redis.set(keyFor(client, key), value, 'EX', ttlSeconds, 'NX', 'GET');
    if (previous === null) return { state: 'new' };
    const [prevHash, prevJob] = previous.split(' ') as [string, string];
    return prevHash === hash(fingerprint) ? { state: 'replay', jobId: prevJob } : { state: 'conflict', jobId: prevJob };
  }

  /** Frees a claim whose job could not be created, so a retry of the request can succeed. */
  async function release(client: string, key: string, jobId: string): Promise<void> {
    const full = keyFor(client, key);
    const current = await redis.get(full);
    if (current?.endsWith(` ${jobId}`)) await redis.del(full);
  }

  return { claim, release };
}

export type IdempotencyStore = ReturnType<typeof createIdempotencyStore>;

const hash = (s: string) => createHash('sha256').update(s).digest('hex');

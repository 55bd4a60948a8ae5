import type { ServiceType } from '@lookup/contracts';
import type { Redis } from './redis.ts';
import { keys as makeKeys } from './keys.ts';

export interface CachedResult {
  data: Record<string, unknown>;
  /** When the lookup that produced it finished (epoch ms). */
  storedAt: number;
}

export type ResultCache = ReturnType<typeof createResultCache>;

/**
 * Recent successful lookups by service and target (`<ns>:cache:<service>:<target>`, kept for the service's
 * freshness window), and the single-flight claims that make concurrent identical lookups, on any worker, run once
 * (`<ns>:flight:<service>:<target>`, SET NX PX: released when its lookup ends, or expiring if its worker dies).
 */
export function createResultCache({ redis, namespace }: { redis: Redis; namespace: string }) {
  const k = makeKeys(namespace);

  async function get(service: ServiceType, target: string): Promise<CachedResult | undefined> {
    const raw = await redis.get(k.resultCache(service, target));
    if (!raw) return undefined;
    try {
      const v = JSON.parse(raw) as CachedResult;
      return v && typeof v.storedAt === 'number' && v.data && typeof v.data === 'object' ? v : undefined;
    } catch {
      return undefined;
    }
  }

  async function put(service: ServiceType, target: string, value: CachedResult, ttlSeconds: number): Promise<void> {
    await redis.set(k.resultCache(service, target), JSON.stringify(value), 'EX', ttlSeconds);
  }

  /** Claims the lookup of this service and target for `owner`: true when nobody else runs it now. */
  async function claimFlight(service: ServiceType, target: string, owner: string, ttlMs: number): Promise<boolean> {
    return (await redis.set(k.resultFlight(service, target), owner, 'PX', ttlMs, 'NX')) === 'OK';
  }

  async function flightActive(service: ServiceType, target: string): Promise<boolean> {
    return (await redis.exists(k.resultFlight(service, target))) === 1;
  }

  /** Releases the claim if `owner` still holds it. */
  async function releaseFlight(service: ServiceType, target: string, owner: string): Promise<void> {
    const key = k.resultFlight(service, target);
    if ((await redis.get(key)) === owner) await redis.del(key);
  }

  return { get, put, claimFlight, flightActive, releaseFlight };
}

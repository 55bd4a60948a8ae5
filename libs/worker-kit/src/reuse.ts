import type { ServiceType } from '@lookup/contracts';
import type { Logger } from '@lookup/logging';
import type { ResultCache } from '@lookup/store';
import type { AttemptOutcome } from './run-lookup.ts';

/** An attempt's outcome, possibly reused from an earlier lookup of the same service and target. */
export type ReusableOutcome = AttemptOutcome & { cached?: true; ageMs?: number };

export interface ResultReuseDeps {
  service: ServiceType;
  cache: Pick<ResultCache, 'get' | 'put' | 'claimFlight' | 'flightActive' | 'releaseFlight'>;
  /** The service's freshness window (CACHE_TTL_<SERVICE>, seconds); 0 = never reuse. */
  ttlSeconds: number;
  /** How long a claim lives (its lookup's timeout plus slack) and so the most a follower waits. */
  flightMs: number;
  /** How often a follower looks for the leader's result. */
  pollMs?: number;
  logger: Logger;
  now?: () => number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Result reuse around one attempt. Within the window, a stored success of the same service and target is reused
 * (`cached: true`, `ageMs`). Otherwise the first worker to claim the lookup (single flight, across workers, through a
 * Redis key) runs it and stores a success for the others; a worker that finds the lookup claimed waits for that
 * result, and runs its own when the claim ends without one (the leader failed or died). `fresh` (the job asked
 * for a new lookup) skips the reuse and the wait but still stores its success.
 */
export function createResultReuse(deps: ResultReuseDeps) {
  const { service, cache, ttlSeconds, flightMs, pollMs = 50, logger, now = Date.now } = deps;

  const reused = (hit: { data: Record<string, unknown>; storedAt: number }): ReusableOutcome => ({
    ok: true,
    data: hit.data,
    durationMs: 0,
    cached: true,
    ageMs: Math.max(0, now() - hit.storedAt),
  });

  async function fresh(target: string, run: () => Promise<AttemptOutcome>): Promise<ReusableOutcome> {
    const outcome = await run();
    if (outcome.ok) await cache.put(service, target, { data: outcome.data, storedAt: now() }, ttlSeconds).catch((err) => logger.warn({ err }, 'could not store the result for reuse'));
    return outcome;
  }

  async function attempt(cmd: { jobId: string; target: string; fresh?: boolean }, run: () => Promise<AttemptOutcome>): Promise<ReusableOutcome> {
    if (ttlSeconds <= 0) return run();
    if (cmd.fresh) return fresh(cmd.target, run);
    const owner = `${cmd.jobId}:${service}`;
    const deadline = now() + flightMs;
    for (;;) {
      const hit = await cache.get(service, cmd.target);
      if (hit && now() - hit.storedAt < ttlSeconds * 1000) return reused(hit);
      if (await cache.claimFlight(service, cmd.target, owner, flightMs)) {
        try {
          return await fresh(cmd.target, run);
        } finally {
          await cache.releaseFlight(service, cmd.target, owner).catch(() => undefined);
        }
      }
      // Another worker runs this very lookup: wait for its result (or for its claim to end without one).
      while (now() < deadline && (await cache.flightActive(service, cmd.target))) {
        const done = await cache.get(service, cmd.target);
        if (done && now() - done.storedAt < ttlSeconds * 1000) {
          logger.info({ target: cmd.target }, 'an identical lookup ran on another worker; reusing its result');
          return reused(done);
        }
        await sleep(pollMs);
      }
      if (now() >= deadline) return run();
    }
  }

  return { attempt };
}

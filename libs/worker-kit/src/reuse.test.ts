import { describe, expect, it } from 'vitest';
import { createLogger } from '@lookup/logging';
import type { CachedResult } from '@lookup/store';
import { createResultReuse } from './reuse.ts';
import type { AttemptOutcome } from './run-lookup.ts';

/** The Redis cache and claims, in memory. */
function fakeCache() {
  const values = new Map<string, CachedResult>();
  const flights = new Map<string, string>();
  const key = (s: number, t: string) => `${s}:${t}`;
  return {
    values,
    flights,
    get: async (s: number, t: string) => values.get(key(s, t)),
    put: async (s: number, t: string, v: CachedResult) => void values.set(key(s, t), v),
    claimFlight: async (s: number, t: string, owner: string) => (flights.has(key(s, t)) ? false : (flights.set(key(s, t), owner), true)),
    flightActive: async (s: number, t: string) => flights.has(key(s, t)),
    releaseFlight: async (s: number, t: string, owner: string) => void (flights.get(key(s, t)) === owner && flights.delete(key(s, t))),
  };
}

const logger = createLogger({ service: 'test', level: 'silent' });
const ok = (n: number): AttemptOutcome => ({ ok: true, data: { n }, durationMs: 5 });
const failed: AttemptOutcome = { ok: false, retryable: true, timedOut: false, errorMessage: 'boom', errorCode: null, durationMs: 5 };
const cmd = (jobId: string, fresh?: boolean) => ({ jobId, target: '192.0.2.1', fresh });

describe('result reuse', () => {
  it('never reuses with a window of 0', async () => {
    const cache = fakeCache();
    const reuse = createResultReuse({ service: 2, cache, ttlSeconds: 0, flightMs: 1000, logger });
    let runs = 0;
    await reuse.attempt(cmd('a'), async () => ok(++runs));
    expect(await reuse.attempt(cmd('b'), async () => ok(++runs))).toEqual(ok(2));
    expect(cache.values.size).toBe(0);
  });

  it('reuses a success within the window with its age, not after it, and not for a fresh job', async () => {
    let now = 1_000_000;
    const cache = fakeCache();
    const reuse = createResultReuse({ service: 2, cache, ttlSeconds: 60, flightMs: 1000, logger, now: () => now });
    let runs = 0;
    expect(await reuse.attempt(cmd('a'), async () => ok(++runs))).toEqual(ok(1));
    now += 10_000;
    expect(await reuse.attempt(cmd('b'), async () => ok(++runs))).toEqual({ ok: true, data: { n: 1 }, durationMs: 0, cached: true, ageMs: 10_000 });
    expect(await reuse.attempt(cmd('c', true), async () => ok(++runs))).toEqual(ok(2));
    now += 60_000;
    expect(await reuse.attempt(cmd('d'), async () => ok(++runs))).toEqual(ok(3));
    expect(cache.flights.size).toBe(0);
  });

  it('does not store failures; a follower runs its own lookup when the leader ends without a result', async () => {
    const cache = fakeCache();
    const reuse = createResultReuse({ service: 2, cache, ttlSeconds: 60, flightMs: 5000, pollMs: 5, logger });
    let release!: () => void;
    const leader = reuse.attempt(cmd('a'), () => new Promise((r) => (release = () => r(failed))));
    await new Promise((r) => setTimeout(r, 10));
    let followerRuns = 0;
    const follower = reuse.attempt(cmd('b'), async () => ok(++followerRuns));
    await new Promise((r) => setTimeout(r, 20));
    expect(followerRuns).toBe(0); // waiting for the leader
    release();
    expect(await leader).toEqual(failed);
    expect(await follower).toEqual(ok(1));
  });

  it('a follower reuses the leader\'s success', async () => {
    const cache = fakeCache();
    const reuse = createResultReuse({ service: 2, cache, ttlSeconds: 60, flightMs: 5000, pollMs: 5, logger });
    let release!: () => void;
    const leader = reuse.attempt(cmd('a'), () => new Promise((r) => (release = () => r(ok(7)))));
    await new Promise((r) => setTimeout(r, 10));
    const follower = reuse.attempt(cmd('b'), async () => ok(99));
    release();
    expect(await leader).toEqual(ok(7));
    expect(await follower).toMatchObject({ ok: true, data: { n: 7 }, cached: true });
  });
});

import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { coordinationKeys } from './keys.ts';
import { defineScript } from './script.ts';

/**
 * The pin table of pinned resources, in Redis: which worker owns which key, under which lease epoch.
 * The API places keys (`place`); workers adopt the keys they are sent, renew them on every heartbeat and
 * release them when asked; admins list, move, unpin and drain. Every decision is one Lua script, so any number
 * of API replicas agree, and the table survives API restarts.
 */
export interface ResourceDirectory {
  /** The key's owner: its live lease, or a new grant (epoch + 1). `undefined` when no worker can take it. */
  place(key: string): Promise<Placement | undefined>;
  /** A worker takes up a key it was sent: renews the lease if it is still its own at that epoch. */
  adopt(workerId: string, key: string, epoch: number): Promise<boolean>;
  /** A worker's heartbeat: marks it live and renews the leases it holds; says which were lost or must go. */
  heartbeat(workerId: string, held: HeldLease[], info: WorkerInfo): Promise<HeartbeatResult>;
  /** The owner gives a key up (lease and pin removed), only if it still holds it at that epoch. */
  release(workerId: string, key: string, epoch: number): Promise<boolean>;
  /** A worker leaves for good (graceful stop, after releasing its keys). */
  leave(workerId: string): Promise<void>;
  listWorkers(): Promise<WorkerRecord[]>;
  listPins(): Promise<PinRecord[]>;
  /** Admin: unpin a key, or move it (`to`: a worker id). */
  requestRelease(key: string, to?: string): Promise<{ status: 'pending' | 'released' | 'not-pinned' | 'bad-target' | 'already-there'; owner?: string }>;
  /** Admin: drain a worker. Returns the number of keys pinned to it, or undefined for an unknown worker. */
  drain(workerId: string): Promise<number | undefined>;
  /** The live lease of a key, if any. */
  lease(key: string): Promise<{ owner: string; epoch: number; remainingMs: number; releaseRequested: boolean } | undefined>;
}

export interface Placement {
  owner: string;
  epoch: number;
  /** Lease time left (ms, Redis clock). */
  remainingMs: number;
  /** Whether this call granted the lease (a new owner or a new epoch). */
  granted: boolean;
  /** Whether this grant moved the key away from a pinned owner that never released it (it died or lost its lease). */
  failover: boolean;
}

export interface HeldLease {
  key: string;
  epoch: number;
}

export interface WorkerInfo {
  host?: string;
  pid?: number;
  startedAt?: string;
}

export interface HeartbeatResult {
  draining: boolean;
  /** Per held lease, in the order given: still ours, lost, or ours but to be released. */
  statuses: ('renewed' | 'lost' | 'release')[];
}

export interface WorkerRecord {
  id: string;
  healthy: boolean;
  draining: boolean;
  lastBeat: string | null;
  resources: string[];
  host?: string;
  pid?: number;
  startedAt?: string;
}

export interface PinRecord {
  key: string;
  owner: string;
  epoch: number;
  leased: boolean;
  ownerHealthy: boolean;
}

export interface ResourceDirectoryOptions {
  redis: Redis;
  namespace: string;
  /** Lease TTL and liveness window: RESOURCE_HEARTBEAT_MS x RESOURCE_MAX_MISSED. */
  ttlMs: number;
  /** Workers silent this long are forgotten (default 10 minutes). */
  pruneAfterMs?: number;
  /** How long a move target is remembered if the key is not requested (default 60 s). */
  moveTargetTtlMs?: number;
}

export function createResourceDirectory({ redis, namespace, ttlMs, pruneAfterMs = 600_000, moveTargetTtlMs = 60_000 }: ResourceDirectoryOptions): ResourceDirectory {
  const k = coordinationKeys(namespace);
  const placeScript = defineScript(redis, 'resource-place');
  const renewScript = defineScript(redis, 'lease-renew');
  const heartbeatScript = defineScript(redis, 'resource-heartbeat');
  const releaseScript = defineScript(redis, 'resource-release');
  const requestReleaseScript = defineScript(redis, 'resource-request-release');
  const drainScript = defineScript(redis, 'resource-drain');
  const ttl = Math.ceil(ttlMs);

  async function redisNow(): Promise<number> {
    const [s, us] = await redis.time();
    return Number(s) * 1000 + Math.floor(Number(us) / 1000);
  }

  return {
    async place(key) {
      const r = (await placeScript(
        [k.resourceLease(key), k.resourcePins, k.resourceEpochs, k.resourceWorkers, k.resourceTarget(key), k.resourceDraining],
        [key, ttl],
      )) as (string | number)[];
      if (Number(r[0]) !== 1) return undefined;
      return { owner: String(r[1]), epoch: Number(r[2]), remainingMs: Number(r[3]), granted: Number(r[4]) === 1, failover: Number(r[5]) === 1 };
    },

    async adopt(workerId, key, epoch) {
      const [ok] = (await renewScript([k.resourceLease(key)], [workerId, ttl, String(epoch)])) as number[];
      return Number(ok) === 1;
    },

    async heartbeat(workerId, held, info) {
      const r = (await heartbeatScript(
        [k.resourceWorkers, k.resourceWorkerInfo, k.resourceDraining, ...held.map((h) => k.resourceLease(h.key))],
        [
          workerId,
          ttl,
          pruneAfterMs,
          JSON.stringify({ host: info.host ?? hostname(), pid: info.pid ?? process.pid, startedAt: info.startedAt ?? '' }),
          ...held.map((h) => String(h.epoch)),
        ],
      )) as number[];
      return {
        draining: Number(r[0]) === 1,
        statuses: r.slice(1).map((s) => (Number(s) === 1 ? 'renewed' : Number(s) === 2 ? 'release' : 'lost')),
      };
    },

    async release(workerId, key, epoch) {
      return Number(await releaseScript([k.resourceLease(key), k.resourcePins], [workerId, String(epoch), key])) === 1;
    },

    async leave(workerId) {
      await redis.multi().zrem(k.resourceWorkers, workerId).hdel(k.resourceWorkerInfo, workerId).srem(k.resourceDraining, workerId).exec();
    },

    async listWorkers() {
      const now = await redisNow();
      // One atomic read of the directory's worker side: a worker's keys are the pins naming it.
      const [entries, infos, draining, pins] = (await redis
        .multi()
        .zrange(k.resourceWorkers, 0, -1, 'WITHSCORES')
        .hgetall(k.resourceWorkerInfo)
        .smembers(k.resourceDraining)
        .hgetall(k.resourcePins)
        .exec())!.map(([err, value]) => {
        if (err) throw err;
        return value;
      }) as [string[], Record<string, string>, string[], Record<string, string>];
      const owned = new Map<string, string[]>();
      for (const [key, owner] of Object.entries(pins)) owned.set(owner, [...(owned.get(owner) ?? []), key]);
      const out: WorkerRecord[] = [];
      for (let i = 0; i < entries.length; i += 2) {
        const id = entries[i]!;
        const beat = Number(entries[i + 1]);
        const info = parseWorkerInfo(infos[id]);
        out.push({
          id,
          healthy: beat >= now - ttl,
          draining: draining.includes(id),
          lastBeat: Number.isFinite(beat) ? new Date(beat).toISOString() : null,
          resources: (owned.get(id) ?? []).sort(),
          host: info.host || undefined,
          pid: info.pid ? Number(info.pid) : undefined,
          startedAt: info.startedAt || undefined,
        });
      }
      return out.sort((a, b) => a.id.localeCompare(b.id));
    },

    async listPins() {
      const now = await redisNow();
      const [pins, epochs] = await Promise.all([redis.hgetall(k.resourcePins), redis.hgetall(k.resourceEpochs)]);
      const out: PinRecord[] = [];
      for (const [key, owner] of Object.entries(pins)) {
        const [lease, beat] = await Promise.all([redis.hmget(k.resourceLease(key), 'holder', 'epoch'), redis.zscore(k.resourceWorkers, owner)]);
        out.push({
          key,
          owner,
          epoch: lease[0] === owner && lease[1] ? Number(lease[1]) : Number(epochs[key] ?? 0),
          leased: lease[0] === owner,
          ownerHealthy: beat !== null && Number(beat) >= now - ttl,
        });
      }
      return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    },

    async requestRelease(key, to) {
      const r = (await requestReleaseScript(
        [k.resourceLease(key), k.resourcePins, k.resourceTarget(key), k.resourceWorkers, k.resourceDraining],
        [key, to ?? '', ttl, moveTargetTtlMs],
      )) as string[];
      return { status: r[0] as 'pending' | 'released' | 'not-pinned' | 'bad-target' | 'already-there', owner: r[1] || undefined };
    },

    async drain(workerId) {
      const n = Number(await drainScript([k.resourceWorkers, k.resourceDraining, k.resourcePins], [workerId]));
      return n < 0 ? undefined : n;
    },

    async lease(key) {
      const [h, pttl] = await Promise.all([redis.hmget(k.resourceLease(key), 'holder', 'epoch', 'release'), redis.pttl(k.resourceLease(key))]);
      if (!h[0] || !h[1]) return undefined;
      return { owner: h[0], epoch: Number(h[1]), remainingMs: Math.max(0, pttl), releaseRequested: h[2] === '1' };
    },
  };
}

/** A worker's info field (JSON written by its heartbeat); anything unreadable counts as unknown. */
function parseWorkerInfo(raw: string | undefined): { host?: string; pid?: number; startedAt?: string } {
  if (!raw) return {};
  try {
    const v = JSON.parse(raw) as Record<string, unknown>;
    return {
      host: typeof v.host === 'string' ? v.host : undefined,
      pid: typeof v.pid === 'number' ? v.pid : undefined,
      startedAt: typeof v.startedAt === 'string' ? v.startedAt : undefined,
    };
  } catch {
    return {};
  }
}

import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '@lookup/logging';
import { monotonicNow, withTimeout, type MonotonicClock } from './clock.ts';
import { CoordinationError } from './errors.ts';
import { coordinationKeys } from './keys.ts';
import { defineScript } from './script.ts';
import type { LeaseTimings } from './timing.ts';

export type AcquireResult =
  | { granted: true; epoch: number }
  | { granted: false; epoch: number; holder: string; remainingMs: number };

/** The lease operations themselves: one Lua script each, keyed under `<namespace>:coord:`. */
export interface LeaseStore {
  acquire(name: string, holder: string, ttlMs: number): Promise<AcquireResult>;
  /** Renews several leases at once; true for each one still held (holder and epoch unchanged). */
  renew(holder: string, ttlMs: number, leases: { name: string; epoch: number }[]): Promise<boolean[]>;
  release(name: string, holder: string, epoch: number): Promise<boolean>;
  /** The current grant, if any (for diagnostics and tests). */
  current(name: string): Promise<{ holder: string; epoch: number; remainingMs: number } | undefined>;
}

export function createLeaseStore({ redis, namespace }: { redis: Redis; namespace: string }): LeaseStore {
  const k = coordinationKeys(namespace);
  const acquireScript = defineScript(redis, 'lease-acquire');
  const renewScript = defineScript(redis, 'lease-renew');
  const releaseScript = defineScript(redis, 'lease-release');
  return {
    async acquire(name, holder, ttlMs) {
      const r = (await acquireScript([k.lease(name), k.leaseEpoch(name)], [holder, Math.ceil(ttlMs)])) as (string | number)[];
      if (Number(r[0]) === 1) return { granted: true, epoch: Number(r[1]) };
      return { granted: false, epoch: Number(r[1]), holder: String(r[2]), remainingMs: Number(r[3]) };
    },
    async renew(holder, ttlMs, leases) {
      if (leases.length === 0) return [];
      const r = (await renewScript(
        leases.map((l) => k.lease(l.name)),
        [holder, Math.ceil(ttlMs), ...leases.map((l) => String(l.epoch))],
      )) as number[];
      return r.map((v) => Number(v) === 1);
    },
    async release(name, holder, epoch) {
      return Number(await releaseScript([k.lease(name)], [holder, String(epoch)])) === 1;
    },
    async current(name) {
      const [h, pttl] = await Promise.all([redis.hmget(k.lease(name), 'holder', 'epoch'), redis.pttl(k.lease(name))]);
      if (!h[0] || !h[1]) return undefined;
      return { holder: h[0], epoch: Number(h[1]), remainingMs: pttl };
    },
  };
}

export interface LeaseKeeperOptions {
  redis: Redis;
  namespace: string;
  /** The lease's name (one lease per name). */
  name: string;
  timings: LeaseTimings;
  /** This contender's id; unique per process by default. */
  holderId?: string;
  logger?: Logger;
  clock?: MonotonicClock;
}

export type LeaseLossReason = 'expired' | 'taken' | 'stopped';

export interface LeaseKeeperEvents {
  acquired: [{ epoch: number; signal: AbortSignal }];
  lost: [{ epoch: number; reason: LeaseLossReason }];
}

interface Tenure {
  epoch: number;
  /** Monotonic time after which the holder no longer considers the lease its own. */
  deadline: number;
  controller: AbortController;
  timer?: NodeJS.Timeout;
}

/**
 * Contends for one lease and keeps it: acquires when free, renews every `renewEveryMs`, and gives it up at
 * `sent + ttl - margin` on its own monotonic clock, where `sent` is when the last successful acquire/renew
 * was *sent*. Redis expires the lease no earlier than `margin` after that, so this holder has stopped (its
 * `signal` aborted, `held` false, 'lost' emitted) before anyone else can be granted the lease.
 *
 * `held` reads the clock on every call, so it is right even when a timer fires late (a blocked event loop, a
 * SIGSTOP): check it (or call `assertHeld()`) right before any side effect, and pass `epoch` as the fencing
 * token to anything that can check one.
 */
export class LeaseKeeper extends EventEmitter<LeaseKeeperEvents> {
  readonly holderId: string;
  private readonly store: LeaseStore;
  private readonly clock: MonotonicClock;
  private tenure?: Tenure;
  private running = false;
  private loop?: Promise<void>;
  private wake?: () => void;

  constructor(private readonly options: LeaseKeeperOptions) {
    super();
    this.holderId = options.holderId ?? `${process.pid}-${randomUUID()}`;
    this.store = createLeaseStore({ redis: options.redis, namespace: options.namespace });
    this.clock = options.clock ?? monotonicNow;
  }

  get name(): string {
    return this.options.name;
  }

  /** Whether this process holds the lease right now (checked against the monotonic deadline). */
  get held(): boolean {
    return this.tenure !== undefined && this.clock() < this.tenure.deadline;
  }

  /** The fencing token of the current tenure, or undefined when not held. */
  get epoch(): number | undefined {
    return this.held ? this.tenure!.epoch : undefined;
  }

  /** Aborted when the current tenure ends; an already-aborted signal when not held. */
  get signal(): AbortSignal {
    if (this.held) return this.tenure!.controller.signal;
    return AbortSignal.abort(new CoordinationError('LEASE_NOT_HELD', `lease ${this.name} is not held`));
  }

  /** Monotonic ms left before this holder gives the lease up (0 when not held). */
  get remainingMs(): number {
    return this.held ? Math.max(0, this.tenure!.deadline - this.clock()) : 0;
  }

  assertHeld(): number {
    if (!this.held) throw new CoordinationError('LEASE_NOT_HELD', `lease ${this.name} is not held by ${this.holderId}`);
    return this.tenure!.epoch;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops contending; a held lease is given up locally first, then released in Redis. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wake?.();
    await this.loop;
    const tenure = this.tenure;
    if (tenure) {
      this.lose('stopped');
      await this.store.release(this.name, this.holderId, tenure.epoch).catch(() => false);
    }
  }

  private async run(): Promise<void> {
    const { renewEveryMs } = this.options.timings;
    while (this.running) {
      try {
        await this.tick();
      } catch (err) {
        this.options.logger?.warn({ lease: this.name, err: (err as Error).message }, 'lease tick failed');
      }
      if (!this.running) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, renewEveryMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  private async tick(): Promise<void> {
    const { ttlMs, renewEveryMs, localValidityMs } = this.options.timings;
    const tenure = this.tenure;
    if (tenure) {
      if (!this.held) return this.lose('expired');
      const sent = this.clock();
      const [ok] = await withTimeout(this.store.renew(this.holderId, ttlMs, [{ name: this.name, epoch: tenure.epoch }]), renewEveryMs, 'lease renew');
      if (this.tenure !== tenure) return; // lost while waiting
      if (!ok) return this.lose('taken');
      if (!this.held) return this.lose('expired');
      this.extend(tenure, sent + localValidityMs);
      return;
    }
    const sent = this.clock();
    const r = await withTimeout(this.store.acquire(this.name, this.holderId, ttlMs), renewEveryMs, 'lease acquire');
    if (!r.granted || !this.running) {
      if (r.granted) await this.store.release(this.name, this.holderId, r.epoch).catch(() => false);
      return;
    }
    const deadline = sent + localValidityMs;
    if (this.clock() >= deadline) return; // the answer came too late to use; Redis expires the grant
    const next: Tenure = { epoch: r.epoch, deadline, controller: new AbortController() };
    this.tenure = next;
    this.extend(next, deadline);
    this.options.logger?.info({ lease: this.name, epoch: r.epoch, holder: this.holderId }, 'lease acquired');
    this.emit('acquired', { epoch: r.epoch, signal: next.controller.signal });
  }

  private extend(tenure: Tenure, deadline: number): void {
    tenure.deadline = deadline;
    clearTimeout(tenure.timer);
    tenure.timer = setTimeout(() => {
      if (this.tenure === tenure && this.clock() >= tenure.deadline) this.lose('expired');
    }, Math.max(0, deadline - this.clock()));
  }

  private lose(reason: LeaseLossReason): void {
    const tenure = this.tenure;
    if (!tenure) return;
    this.tenure = undefined;
    clearTimeout(tenure.timer);
    tenure.controller.abort(new CoordinationError('LEASE_NOT_HELD', `lease ${this.name} lost (${reason})`));
    // Giving a lease back on purpose (shutdown, an idle key closed) is routine; losing one is worth a warning.
    if (reason === 'stopped') this.options.logger?.debug({ lease: this.name, epoch: tenure.epoch }, 'lease released');
    else this.options.logger?.warn({ lease: this.name, epoch: tenure.epoch, reason }, 'lease lost');
    this.emit('lost', { epoch: tenure.epoch, reason });
  }
}

import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '@lookup/logging';
import { monotonicNow, withTimeout, type MonotonicClock } from './clock.ts';
import { coordinationKeys } from './keys.ts';
import { defineScript } from './script.ts';
import type { LeaseTimings } from './timing.ts';

export interface MembershipOptions {
  redis: Redis;
  namespace: string;
  /** The group, e.g. 'data-processor'. */
  group: string;
  timings: LeaseTimings;
  id?: string;
  logger?: Logger;
  clock?: MonotonicClock;
}

export interface MembershipView {
  /** Live members, sorted by id: every member sees the same order. */
  members: string[];
  /** This member's position in `members`, or -1 while it is not (known to be) a live member. */
  index: number;
  count: number;
}

export interface MembershipEvents {
  changed: [MembershipView];
}

/**
 * Group membership for coordinated work (the seed's GloballyCoordinatedWorker): every member heartbeats,
 * members whose heartbeat is older than the TTL drop out, and each member knows its index and the member count,
 * e.g. to take the partitions where `partition % count === index`. The view is only trusted until
 * `localValidity` after the last successful beat was sent; after that `index` is -1.
 */
export class Membership extends EventEmitter<MembershipEvents> {
  readonly id: string;
  private readonly beat: ReturnType<typeof defineScript>;
  private readonly key: string;
  private readonly clock: MonotonicClock;
  private members: string[] = [];
  private validUntil = 0;
  private timer?: NodeJS.Timeout;
  private running = false;
  private inFlight?: Promise<void>;

  constructor(private readonly options: MembershipOptions) {
    super();
    this.id = options.id ?? `${process.pid}-${randomUUID()}`;
    this.beat = defineScript(options.redis, 'membership-beat');
    this.key = coordinationKeys(options.namespace).members(options.group);
    this.clock = options.clock ?? monotonicNow;
  }

  get view(): MembershipView {
    if (this.clock() >= this.validUntil) return { members: [], index: -1, count: 0 };
    const index = this.members.indexOf(this.id);
    return { members: [...this.members], index, count: this.members.length };
  }

  get index(): number {
    return this.view.index;
  }

  get count(): number {
    return this.view.count;
  }

  /** Joins the group (resolves after the first beat) and keeps beating. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.tick();
  }

  /** Leaves the group at once (others see it gone on their next beat). */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await this.inFlight?.catch(() => undefined);
    this.validUntil = 0;
    await this.beat([this.key], [this.id, this.options.timings.ttlMs, '1']).catch(() => undefined);
  }

  private tick(): Promise<void> {
    const run = async () => {
      const { ttlMs, renewEveryMs, localValidityMs } = this.options.timings;
      const sent = this.clock();
      try {
        const members = (await withTimeout(this.beat([this.key], [this.id, ttlMs, '0']), renewEveryMs, 'membership beat')) as string[];
        if (!this.running) return;
        const before = this.view;
        this.members = members.map(String);
        this.validUntil = sent + localValidityMs;
        const after = this.view;
        if (before.index !== after.index || before.members.join('\n') !== after.members.join('\n')) this.emit('changed', after);
      } catch (err) {
        this.options.logger?.warn({ group: this.options.group, err: (err as Error).message }, 'membership beat failed');
      }
    };
    this.inFlight = run().finally(() => {
      if (this.running) this.timer = setTimeout(() => void this.tick(), this.options.timings.renewEveryMs);
    });
    return this.inFlight;
  }
}

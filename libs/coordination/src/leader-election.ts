import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import type { Logger } from '@lookup/logging';
import type { MonotonicClock } from './clock.ts';
import { LeaseKeeper, type LeaseLossReason } from './lease.ts';
import type { LeaseTimings } from './timing.ts';

export interface LeaderElectionOptions {
  redis: Redis;
  namespace: string;
  /** What is being led, e.g. 'deadline-sweeper'. */
  name: string;
  /**
   * One leader per group (e.g. a cluster or region); omitted means one leader globally. Groups are
   * independent elections: `{name: 'x', group: 'a'}` and `{name: 'x', group: 'b'}` each have their own leader.
   */
  group?: string;
  timings: LeaseTimings;
  /** This instance's id (default: unique per process). */
  id?: string;
  logger?: Logger;
  clock?: MonotonicClock;
}

export interface LeaderElectionEvents {
  elected: [{ epoch: number; signal: AbortSignal }];
  lost: [{ epoch: number; reason: LeaseLossReason }];
}

/**
 * Leader election on a lease: at most one instance per (name, group) is leader at any instant, and a leader that
 * cannot renew stops being leader before another can be elected.
 *
 *   const election = new LeaderElection({ redis, namespace, name: 'deadline-sweeper', timings });
 *   election.on('elected', ({ signal, epoch }) => void sweepUntil(signal, epoch));
 *   election.start();
 *   ...
 *   await election.stop();
 *
 * The leader's work takes `signal` (aborted the moment leadership ends, including on stop()) and should check
 * `isLeader` right before each side effect; `epoch` is the fencing token to attach to writes that can check one.
 */
export class LeaderElection extends EventEmitter<LeaderElectionEvents> {
  private readonly keeper: LeaseKeeper;

  constructor(options: LeaderElectionOptions) {
    super();
    const scope = options.group === undefined ? 'global' : `group:${options.group}`;
    this.keeper = new LeaseKeeper({
      redis: options.redis,
      namespace: options.namespace,
      name: `leader:${options.name}:${scope}`,
      timings: options.timings,
      holderId: options.id,
      logger: options.logger,
      clock: options.clock,
    });
    this.keeper.on('acquired', (e) => this.emit('elected', e));
    this.keeper.on('lost', (e) => this.emit('lost', e));
  }

  get id(): string {
    return this.keeper.holderId;
  }

  get isLeader(): boolean {
    return this.keeper.held;
  }

  get epoch(): number | undefined {
    return this.keeper.epoch;
  }

  /** Aborted when leadership ends; already aborted while not leader. */
  get signal(): AbortSignal {
    return this.keeper.signal;
  }

  /** Throws CoordinationError('LEASE_NOT_HELD') unless leader; returns the epoch. */
  assertLeader(): number {
    return this.keeper.assertHeld();
  }

  start(): void {
    this.keeper.start();
  }

  /** Steps down (aborting the leader's signal, emitting 'lost' with reason 'stopped') and stops contending. */
  stop(): Promise<void> {
    return this.keeper.stop();
  }
}

import type { Config } from '@lookup/config';
import { isCodedError, type ErrorBody, type ResourceReplyMessage, type ResourceWorkerMessage, type ResourceRequestMessage } from '@lookup/contracts';
import { CoordinationError, monotonicNow, withTimeout, type LeaseTimings, type MonotonicClock, type ResourceDirectory } from '@lookup/coordination';
import type { Logger } from '@lookup/logging';
import { resourceRequests, zeroed } from '@lookup/metrics';
import { ResourceHttpError, type ResourceContext, type ResourceRequest, type ResourceResponse, type ResourceType } from './types.ts';

export interface ReplyTarget {
  replyTo: string | undefined;
  correlationId: string;
}

export interface ResourceHostDeps<R> {
  type: ResourceType<R>;
  workerId: string;
  directory: Pick<ResourceDirectory, 'adopt' | 'heartbeat' | 'release' | 'leave'>;
  timings: LeaseTimings;
  config: Readonly<Config>;
  logger: Logger;
  /** Sends a reply to the API; false when it could not. */
  reply: (target: ReplyTarget, body: ResourceReplyMessage) => boolean;
  /** Whether requests can reach this worker; while false it stops renewing, so its keys move elsewhere. */
  transportReady?: () => boolean;
  clock?: MonotonicClock;
}

type SlotState = 'opening' | 'open' | 'closing' | 'closed';

/** One key this worker owns, under one epoch. */
interface Slot<R> {
  key: string;
  epoch: number;
  state: SlotState;
  resource?: R;
  /** Monotonic time after which the lease is no longer ours: sent time of the last successful adopt/renew + ttl - margin. */
  deadline: number;
  controller: AbortController;
  active: Set<Promise<unknown>>;
  releasing: boolean;
  /** Settles once a scheduled release has closed the slot and released the lease. */
  released?: Promise<void>;
  /** Monotonic time the last request for this key ended (or the slot opened): for idle release and LRU eviction. */
  lastUsed: number;
}

interface Task {
  requestId: string;
  controller: AbortController;
  run: (signal: AbortSignal) => Promise<void>;
  started: boolean;
}

interface KeyQueue {
  tasks: Task[];
  active: number;
}

const b64 = (buf: Buffer) => buf.toString('base64');

/**
 * The engine of a resource worker, without I/O of its own: takes request and cancel messages, keeps per-key
 * FIFO queues, adopts, opens, serves, renews (one heartbeat for every key), and closes keys whose lease is lost,
 * expired (on the monotonic clock) or released. A key is closed at its local deadline, which comes a safety
 * margin before Redis can grant the lease to anyone else.
 *
 * Keys are pinned only by requests the type accepts (`accept`): a refused request releases the lease the API
 * placed for it and opens nothing. A key unused for RESOURCE_IDLE_MS is closed and released; at most
 * RESOURCE_MAX_OPEN keys are open at once (a new key closes the least recently used idle one, or is answered
 * 503 with Retry-After when every open key is busy).
 */
export class ResourceHost<R> {
  private readonly slots = new Map<string, Slot<R>>();
  private readonly queues = new Map<string, KeyQueue>();
  private readonly running = new Map<string, Task>();
  private readonly clock: MonotonicClock;
  private readonly concurrency: number;
  /** New keys between the RESOURCE_MAX_OPEN check and their slot (they count against the cap). */
  private reserved = 0;
  private draining = false;
  private stopping = false;
  private heartbeatTimer?: NodeJS.Timeout;
  private watchdog?: NodeJS.Timeout;
  private beating?: Promise<void>;
  private readonly startedAt = new Date().toISOString();
  /** lookup_resource_requests_total{outcome}, bound once. */
  private readonly answered = {
    succeeded: zeroed(resourceRequests().labels('succeeded')),
    failed: zeroed(resourceRequests().labels('failed')),
    refused: zeroed(resourceRequests().labels('refused')),
  };

  constructor(private readonly deps: ResourceHostDeps<R>) {
    this.clock = deps.clock ?? monotonicNow;
    this.concurrency = Math.max(1, Math.floor(deps.type.concurrency ?? 1));
  }

  /** Keys held right now, with their epochs. */
  get held(): { key: string; epoch: number }[] {
    return [...this.slots.values()].filter((s) => s.state !== 'closed' && this.valid(s)).map((s) => ({ key: s.key, epoch: s.epoch }));
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Registers the worker (first heartbeat) and keeps beating; a watchdog closes keys at their local deadline. */
  async start(): Promise<void> {
    await this.heartbeat();
    const every = this.deps.timings.renewEveryMs;
    const schedule = () => {
      this.heartbeatTimer = setTimeout(() => {
        this.beating = this.heartbeat().finally(() => {
          if (!this.stopping) schedule();
        });
      }, every);
    };
    schedule();
    const watchEvery = Math.max(5, Math.min(every, this.deps.timings.safetyMarginMs) / 2);
    this.watchdog = setInterval(() => this.expireSlots(), watchEvery);
  }

  /** Stops taking requests, lets running ones finish (up to timeoutMs), closes and releases every key, leaves. */
  async stop(timeoutMs = 5_000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearTimeout(this.heartbeatTimer);
    clearInterval(this.watchdog);
    await this.beating?.catch(() => undefined);
    for (const [key, q] of this.queues) {
      for (const t of q.tasks) t.controller.abort(new Error('worker stopping'));
      q.tasks = [];
      this.queues.delete(key);
    }
    const inFlight = [...this.slots.values()].flatMap((s) => [...s.active]);
    await Promise.race([Promise.allSettled(inFlight), new Promise((r) => setTimeout(r, timeoutMs))]);
    await Promise.allSettled(
      [...this.slots.values()].map(async (slot) => {
        const epoch = slot.epoch;
        await this.closeSlot(slot, 'shutdown');
        await this.deps.directory.release(this.deps.workerId, slot.key, epoch).catch(() => false);
      }),
    );
    await this.deps.directory.leave(this.deps.workerId).catch(() => undefined);
  }

  /** Entry point for every message from the worker's queue. */
  onMessage(message: ResourceWorkerMessage, target: ReplyTarget): void {
    if (message.type === 'cancel') return this.cancel(message.requestId, message.reason);
    if (this.stopping || this.draining) {
      this.refuse(target, message.requestId, 'draining', `worker ${this.deps.workerId} is ${this.stopping ? 'stopping' : 'draining'}`);
      return;
    }
    const controller = new AbortController();
    this.enqueue(message.key, {
      requestId: message.requestId,
      controller,
      started: false,
      run: (signal) => this.serve(message, target, signal),
    });
  }

  // ---------------------------------------------------------------------------------------------------------
  // Per-key FIFO

  private enqueue(key: string, task: Task): void {
    let q = this.queues.get(key);
    if (!q) {
      q = { tasks: [], active: 0 };
      this.queues.set(key, q);
    }
    q.tasks.push(task);
    this.pump(key);
  }

  private pump(key: string): void {
    const q = this.queues.get(key);
    if (!q) return;
    while (q.active < this.concurrency && q.tasks.length > 0) {
      const task = q.tasks.shift()!;
      q.active += 1;
      task.started = true;
      this.running.set(task.requestId, task);
      void task
        .run(task.controller.signal)
        .catch((err) => this.deps.logger.error({ err, key }, 'resource task failed'))
        .finally(() => {
          this.running.delete(task.requestId);
          q.active -= 1;
          if (q.active === 0 && q.tasks.length === 0) this.queues.delete(key);
          else this.pump(key);
        });
    }
  }

  private cancel(requestId: string, reason: string): void {
    const running = this.running.get(requestId);
    if (running) {
      this.deps.logger.info({ requestId, reason }, 'abandoning a running request');
      running.controller.abort(new Error(`cancelled: ${reason}`));
      return;
    }
    for (const q of this.queues.values()) {
      const i = q.tasks.findIndex((t) => t.requestId === requestId);
      if (i >= 0) {
        q.tasks.splice(i, 1);
        this.deps.logger.info({ requestId, reason }, 'dropped a queued request the API abandoned');
        return;
      }
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Serving

  private valid(slot: Slot<R>): boolean {
    return (slot.state === 'open' || slot.state === 'opening') && this.clock() < slot.deadline;
  }

  private context(slot: Slot<R>, signal: AbortSignal): ResourceContext {
    return {
      key: slot.key,
      epoch: slot.epoch,
      signal,
      assertOwner: () => {
        if (!this.valid(slot)) throw new CoordinationError('LEASE_NOT_HELD', `lease on ${slot.key} (epoch ${slot.epoch}) is no longer held`);
        if (signal.aborted) throw new CoordinationError('LEASE_NOT_HELD', `request for ${slot.key} was abandoned`);
      },
      logger: this.deps.logger.child({ key: slot.key, epoch: slot.epoch }),
      config: this.deps.config,
    };
  }

  private async serve(message: ResourceRequestMessage, target: ReplyTarget, taskSignal: AbortSignal): Promise<void> {
    const { key, epoch, requestId } = message;
    if (taskSignal.aborted) return;
    if (this.stopping || this.draining) return this.refuse(target, requestId, 'draining', `worker ${this.deps.workerId} is draining`);
    const request: ResourceRequest = {
      requestId,
      key,
      epoch,
      method: message.method,
      query: message.query,
      headers: message.headers,
      body: Buffer.from(message.body, 'base64'),
    };
    if (this.deps.type.accept) {
      try {
        await this.deps.type.accept(request, { key, logger: this.deps.logger.child({ key }), config: this.deps.config });
      } catch (err) {
        // Refused before anything is opened: give back the lease the API placed for this request, unless the key
        // is already open here under that epoch (pinned by earlier requests) or another request for it is running.
        if (this.slots.get(key)?.epoch !== epoch && (this.queues.get(key)?.active ?? 0) <= 1) await this.releaseUnopened(key, epoch);
        return this.respondError(target, message, epoch, err);
      }
    }
    let slot = this.slots.get(key);
    if (slot && slot.epoch !== epoch) {
      if (epoch < slot.epoch) {
        return this.refuse(target, requestId, 'stale-epoch', `key ${key} is held at epoch ${slot.epoch}; the request carries ${epoch}`);
      }
      // Granted to us again under a newer epoch: whatever we held before may be stale. Close, reopen from storage.
      await this.closeSlot(slot, 'superseded');
      slot = undefined;
    }
    if (slot && slot.releasing) return this.refuse(target, requestId, 'draining', `key ${key} is being released`);
    if (!slot) {
      if (!(await this.reserve())) {
        await this.releaseUnopened(key, epoch);
        const max = this.deps.config.resourceMaxOpen;
        const retryAfter = String(Math.max(1, Math.ceil(this.deps.timings.renewEveryMs / 1000)));
        return this.respondError(
          target,
          message,
          epoch,
          new ResourceHttpError(
            503,
            {
              error: 'Too many open resources',
              message: `Worker ${this.deps.workerId} has ${max} resources open (RESOURCE_MAX_OPEN), all busy; retry shortly`,
              code: 'TOO_MANY_OPEN_RESOURCES',
              details: { maxOpen: max },
            },
            { 'retry-after': retryAfter },
          ),
        );
      }
      let reserved = true;
      const unreserve = () => {
        if (reserved) this.reserved -= 1;
        reserved = false;
      };
      const sent = this.clock();
      let adopted = false;
      try {
        adopted = await this.deps.directory.adopt(this.deps.workerId, key, epoch);
      } catch (err) {
        this.deps.logger.warn({ key, epoch, err: (err as Error).message }, 'could not adopt key');
      }
      if (!adopted) {
        unreserve();
        return this.refuse(target, requestId, 'not-owner', `worker ${this.deps.workerId} does not hold ${key} at epoch ${epoch}`);
      }
      if (this.slots.get(key)) {
        // Another task for this key adopted meanwhile (only with concurrency > 1).
        unreserve();
        slot = this.slots.get(key)!;
      } else {
        slot = {
          key,
          epoch,
          state: 'opening',
          deadline: sent + this.deps.timings.localValidityMs,
          controller: new AbortController(),
          active: new Set(),
          releasing: false,
          lastUsed: this.clock(),
        };
        this.slots.set(key, slot);
        unreserve();
        const ctx = this.context(slot, slot.controller.signal);
        try {
          ctx.assertOwner();
          slot.resource = await this.deps.type.open(key, ctx);
          if (slot.state !== 'opening') {
            // Lost while opening: close what was opened.
            await this.safeClose(slot, 'lost while opening');
            return this.refuse(target, requestId, 'lease-lost', `lost the lease on ${key} while opening it`);
          }
          slot.state = 'open';
          this.deps.logger.info({ key, epoch }, 'resource opened');
        } catch (err) {
          this.slots.delete(key);
          slot.state = 'closed';
          slot.controller.abort();
          // A key this type cannot open is not kept pinned to us.
          await this.deps.directory.release(this.deps.workerId, key, epoch).catch(() => false);
          if (isLeaseError(err)) return this.refuse(target, requestId, 'lease-lost', (err as Error).message);
          return this.respondError(target, message, epoch, err);
        }
      }
    }
    if (!this.valid(slot)) {
      await this.closeSlot(slot, 'lease expired');
      return this.refuse(target, requestId, 'lease-lost', `the lease on ${key} ran out`);
    }
    const signal = AbortSignal.any([slot.controller.signal, taskSignal]);
    const ctx = this.context(slot, signal);
    const open = slot;
    const work = (async () => {
      ctx.assertOwner();
      return this.deps.type.handle(request, open.resource as R, ctx);
    })();
    slot.active.add(work);
    let result: ResourceResponse;
    try {
      result = await work;
    } catch (err) {
      if (isLeaseError(err)) return this.refuse(target, requestId, taskSignal.aborted ? 'cancelled' : 'lease-lost', (err as Error).message);
      return this.respondError(target, message, slot.epoch, err);
    } finally {
      slot.active.delete(work);
      slot.lastUsed = this.clock();
    }
    if (taskSignal.aborted) return; // the API answered 504 already; nobody waits for this
    this.send(target, {
      type: 'response',
      requestId,
      worker: this.deps.workerId,
      epoch: slot.epoch,
      ...encodeResponse(result),
    });
  }

  /** Gives back a lease this worker holds at `epoch` but never opened (a refused request's); a no-op otherwise. */
  private async releaseUnopened(key: string, epoch: number): Promise<void> {
    const released = await this.deps.directory.release(this.deps.workerId, key, epoch).catch(() => false);
    if (released) this.deps.logger.debug({ key, epoch }, 'released the lease of a refused request');
  }

  private respondError(target: ReplyTarget, message: ResourceRequestMessage, epoch: number, err: unknown): void {
    let status = 500;
    let body: ErrorBody = { error: 'Internal error', message: 'The resource worker failed while handling the request; it was logged', code: 'INTERNAL_ERROR' };
    let headers: Record<string, string> = {};
    if (err instanceof ResourceHttpError || (isCodedError(err) && err.code === 'RESOURCE_HTTP_ERROR')) {
      const e = err as ResourceHttpError;
      status = e.status;
      // The suite's one error body: exactly these four fields.
      const b: Partial<ErrorBody> = e.body ?? {};
      body = { error: b.error ?? 'Error', message: b.message ?? e.message };
      if (b.code !== undefined) body.code = b.code;
      if (b.details !== undefined) body.details = b.details;
      headers = e.headers ?? {};
    } else {
      this.deps.logger.error({ err, key: message.key, requestId: message.requestId }, 'resource handler failed');
    }
    this.send(target, {
      type: 'response',
      requestId: message.requestId,
      worker: this.deps.workerId,
      epoch,
      status,
      headers: { ...headers, 'content-type': 'application/json; charset=utf-8' },
      body: b64(Buffer.from(JSON.stringify(body))),
    });
  }

  private refuse(target: ReplyTarget, requestId: string, reason: Extract<ResourceReplyMessage, { type: 'refused' }>['reason'], message: string): void {
    this.deps.logger.info({ requestId, reason }, message);
    this.send(target, { type: 'refused', requestId, worker: this.deps.workerId, reason, message });
  }

  /** Every answer to a request goes out here: counted here, once per request answered. */
  private send(target: ReplyTarget, body: ResourceReplyMessage): void {
    if (body.type === 'refused') this.answered.refused.inc();
    else if (body.type === 'response') (body.status >= 400 ? this.answered.failed : this.answered.succeeded).inc();
    if (!target.replyTo) return;
    if (!this.deps.reply(target, body)) this.deps.logger.warn({ requestId: body.requestId }, 'could not send the reply');
  }

  // ---------------------------------------------------------------------------------------------------------
  // Leases

  private async heartbeat(): Promise<void> {
    if (this.stopping) return;
    if (this.deps.transportReady && !this.deps.transportReady()) {
      this.deps.logger.warn('not connected to RabbitMQ: not renewing, so these keys move to a reachable worker');
      return;
    }
    const snapshot = [...this.slots.values()].filter((s) => s.state === 'open' || s.state === 'opening');
    const sent = this.clock();
    let result;
    try {
      result = await withTimeout(
        this.deps.directory.heartbeat(this.deps.workerId, snapshot.map((s) => ({ key: s.key, epoch: s.epoch })), { startedAt: this.startedAt }),
        this.deps.timings.renewEveryMs,
        'resource heartbeat',
      );
    } catch (err) {
      this.deps.logger.warn({ err: (err as Error).message }, 'heartbeat failed; keys close at their deadline unless a later beat succeeds');
      return;
    }
    const deadline = sent + this.deps.timings.localValidityMs;
    result.statuses.forEach((status, i) => {
      const slot = snapshot[i]!;
      if (this.slots.get(slot.key) !== slot) return;
      if (status === 'lost') {
        void this.closeSlot(slot, 'lease lost');
        return;
      }
      if (this.valid(slot)) slot.deadline = Math.max(slot.deadline, deadline);
      if (status === 'release') void this.scheduleRelease(slot, 'release requested');
    });
    if (result.draining && !this.draining) {
      this.draining = true;
      this.deps.logger.info({ keys: this.slots.size }, 'draining: releasing every key and taking no new ones');
    }
    if (this.draining) for (const slot of this.slots.values()) void this.scheduleRelease(slot, 'draining');
  }

  private expireSlots(): void {
    const now = this.clock();
    for (const slot of this.slots.values()) {
      if ((slot.state === 'open' || slot.state === 'opening') && !this.valid(slot)) void this.closeSlot(slot, 'lease expired');
      else if (this.idle(slot) && now - slot.lastUsed >= this.deps.config.resourceIdleMs) {
        void this.scheduleRelease(slot, `idle for ${this.deps.config.resourceIdleMs} ms (RESOURCE_IDLE_MS)`);
      }
    }
  }

  /** Open, not being released, nothing running or queued for it. */
  private idle(slot: Slot<R>): boolean {
    const q = this.queues.get(slot.key);
    return slot.state === 'open' && !slot.releasing && slot.active.size === 0 && (!q || (q.active === 0 && q.tasks.length === 0));
  }

  /**
   * Makes room for one more open key under RESOURCE_MAX_OPEN: true when there is room (reserved for the caller,
   * who must call `unreserve` once its slot exists or the open failed), false when every open key is busy.
   * The least recently used idle key is closed and released through its own queue, as an admin release is, so a
   * request for it that arrives meanwhile waits behind the release and then finds the key gone.
   */
  private async reserve(): Promise<boolean> {
    const max = this.deps.config.resourceMaxOpen;
    while (this.slots.size + this.reserved >= max) {
      let victim: Slot<R> | undefined;
      for (const slot of this.slots.values()) if (this.idle(slot) && (!victim || slot.lastUsed < victim.lastUsed)) victim = slot;
      if (!victim) return false;
      await this.scheduleRelease(victim, `least recently used, to stay within ${max} open resources (RESOURCE_MAX_OPEN)`);
    }
    this.reserved += 1;
    return true;
  }

  /** Releases a key after the requests queued before the release request have been served. */
  private scheduleRelease(slot: Slot<R>, reason: string): Promise<void> {
    if (slot.releasing) return slot.released ?? Promise.resolve();
    slot.releasing = true;
    slot.released = new Promise<void>((resolve) => {
      this.enqueue(slot.key, {
        requestId: `release:${slot.key}:${slot.epoch}`,
        controller: new AbortController(),
        started: false,
        run: async () => {
          try {
            await this.closeSlot(slot, reason);
            const released = await this.deps.directory.release(this.deps.workerId, slot.key, slot.epoch).catch(() => false);
            this.deps.logger.info({ key: slot.key, epoch: slot.epoch, reason, released }, 'resource released');
          } finally {
            resolve();
          }
        },
      });
    });
    return slot.released;
  }

  private async closeSlot(slot: Slot<R>, reason: string): Promise<void> {
    if (slot.state === 'closing' || slot.state === 'closed') return;
    const wasOpen = slot.state === 'open';
    slot.state = 'closing';
    if (this.slots.get(slot.key) === slot) this.slots.delete(slot.key);
    slot.controller.abort(new CoordinationError('LEASE_NOT_HELD', `${slot.key}: ${reason}`));
    this.deps.logger.info({ key: slot.key, epoch: slot.epoch, reason }, 'closing resource');
    if (wasOpen) await this.safeClose(slot, reason);
    slot.state = 'closed';
  }

  private async safeClose(slot: Slot<R>, reason: string): Promise<void> {
    if (slot.resource === undefined) return;
    try {
      await this.deps.type.close(slot.resource, { key: slot.key, epoch: slot.epoch, reason, logger: this.deps.logger });
    } catch (err) {
      this.deps.logger.warn({ key: slot.key, err: (err as Error).message }, 'close failed');
    }
    slot.resource = undefined;
  }
}

function isLeaseError(err: unknown): boolean {
  return isCodedError(err) && err.code === 'LEASE_NOT_HELD';
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'content-length', 'trailer', 'te', 'proxy-connection']);

/** Turns a handler's answer into the wire form: status, string headers, base64 body. */
export function encodeResponse(result: ResourceResponse | undefined): { status: number; headers: Record<string, string>; body: string } {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(result?.headers ?? {})) {
    const n = name.toLowerCase();
    if (!HOP_BY_HOP.has(n) && value !== undefined) headers[n] = String(value);
  }
  const raw = result?.body;
  let body: Buffer;
  if (raw === undefined || raw === null) body = Buffer.alloc(0);
  else if (Buffer.isBuffer(raw)) body = raw;
  else if (raw instanceof Uint8Array) body = Buffer.from(raw);
  else if (typeof raw === 'string') {
    body = Buffer.from(raw, 'utf8');
    headers['content-type'] ??= 'text/plain; charset=utf-8';
  } else {
    body = Buffer.from(JSON.stringify(raw), 'utf8');
    headers['content-type'] ??= 'application/json; charset=utf-8';
  }
  const status = Number.isInteger(result?.status) && result!.status! >= 100 && result!.status! <= 599 ? result!.status! : 200;
  return { status, headers, body: b64(body) };
}

import type { JobEvent, Redis } from '@lookup/store';
import { keys, parseJobEventMessage, waitForRedis } from '@lookup/store';
import type { Logger } from '@lookup/logging';

/**
 * A job's events for its event stream (routes/job-stream.ts): what is recorded (`read`), and a wake-up when there
 * may be more (`subscribe`).
 *
 * Where events come from: the store's scripts append to a per-job Redis Stream (`<ns>:job:<id>:events`) in the
 * same script that records an outcome, cancels, expires or completes the job (libs/store lua/includes/job-event.lua),
 * so an event exists iff the job changed, and its entry id is the SSE id. Replaying after a Last-Event-ID is one
 * XRANGE, on any replica.
 *
 * How a replica learns of new entries: those scripts also PUBLISH on the channel named like the stream, and this
 * process SUBSCRIBEs, on one dedicated Redis connection per replica, to the channels of the jobs its clients
 * follow (first listener subscribes, last one unsubscribes). Chosen over the alternatives because:
 * - an AMQP `job.progress` message per outcome would add a publish (and a confirm) to the saga's hot path for every
 *   outcome, listened to or not; a PUBLISH inside a script that already runs costs next to nothing, and nothing at
 *   all for a job no client follows (no subscriber on its channel);
 * - XREAD BLOCK multiplexing every followed stream on one connection has to be interrupted (CLIENT UNBLOCK or a
 *   short timeout) whenever a client arrives, and re-sends every stream's key and id each round; SUBSCRIBE keeps
 *   one connection per replica without that churn.
 * Each message names the entries its script appended (`<id> <type>[ <service>]` per line), and is handed to the
 * listeners: pub/sub on one connection delivers every message published after the SUBSCRIBE, in publish order, so
 * a listener that read the stream after subscribing needs no XRANGE to follow it (the entries after its position,
 * from the messages, are exactly the stream's next entries). Pub/sub is lossy across a reconnect: after the
 * subscriber connection reconnects, every listener gets a bare wake-up (no entries) and re-reads its stream.
 */
export interface JobEventSource {
  /**
   * Calls `listener` whenever the job may have changed: with the entries recorded, as announced, or with nothing
   * (read the stream). Resolves, once listening (nothing recorded afterwards can be missed), to the unsubscribe
   * function; rejects when the wake-up channel is unavailable.
   */
  subscribe(jobId: string, listener: JobEventListener): Promise<() => void>;
  /** The job's events after `afterId` ('0-0': all), oldest first. */
  read(jobId: string, afterId: string): Promise<JobEvent[]>;
}

/** Woken with the new entries, oldest first, or with undefined: something may have changed, read the stream. */
export type JobEventListener = (events?: JobEvent[]) => void;

export interface JobEventHubOptions {
  /** Reads a job's event stream (the job store's readEvents); without it, no job has events (tests). */
  read?: (jobId: string, afterId: string) => Promise<JobEvent[]>;
  /** A dedicated connection for SUBSCRIBE (it can do nothing else), and the namespace naming the channels. */
  subscriber?: { redis: Redis; namespace: string; logger: Logger };
}

/** How long a finished stream's channel stays subscribed at most, collecting others for one UNSUBSCRIBE. */
export const UNSUBSCRIBE_BATCH_MS = 200;

export function createJobEventHub(options: JobEventHubOptions = {}) {
  interface Entry {
    listeners: Set<JobEventListener>;
    /** Resolves once the channel is subscribed (at once without a subscriber connection). */
    ready: Promise<void>;
  }
  const entries = new Map<string, Entry>();
  const sub = options.subscriber;
  const channel = sub ? keys(sub.namespace).jobEvents : undefined;
  const byChannel = new Map<string, string>();

  if (sub) {
    sub.redis.on('message', (ch: string, message: string) => {
      const jobId = byChannel.get(ch);
      if (jobId) notify(jobId, parseJobEventMessage(message));
    });
    // ioredis re-subscribes after a reconnect; what was published meanwhile is lost, so everyone re-reads.
    let connectedBefore = false;
    sub.redis.on('ready', () => {
      if (connectedBefore) notifyAll();
      connectedBefore = true;
    });
  }

  // SUBSCRIBE and UNSUBSCRIBE go out in batches: every channel asked for in one event-loop turn in one SUBSCRIBE
  // (streams opened together share one command and one write), and channels whose last listener left in one
  // UNSUBSCRIBE every UNSUBSCRIBE_BATCH_MS (a finished stream's channel stays subscribed until then; a message on it
  // finds no listener and is dropped; a stream that opens meanwhile finds it still subscribed). One command per
  // stream and per end cost the API a write each (about 6% of its CPU under load).
  const subscribed = new Set<string>();
  let toSubscribe: { channels: Set<string>; done: Promise<void> } | undefined;
  const toUnsubscribe = new Set<string>();
  let unsubscribeTimer: NodeJS.Timeout | undefined;

  async function listen(jobId: string): Promise<void> {
    if (!sub || !channel) return;
    const ch = channel(jobId);
    byChannel.set(ch, jobId);
    toUnsubscribe.delete(ch);
    if (subscribed.has(ch)) return;
    if (sub.redis.status !== 'ready') await waitForRedis(sub.redis, 2_000);
    if (subscribed.has(ch)) return;
    if (!toSubscribe) {
      const batch = { channels: new Set<string>(), done: Promise.resolve() };
      batch.done = new Promise<void>((resolve, reject) => {
        setImmediate(() => {
          if (toSubscribe === batch) toSubscribe = undefined;
          const channels = [...batch.channels];
          sub.redis.subscribe(...channels).then(() => {
            for (const c of channels) if (byChannel.has(c)) subscribed.add(c);
            resolve();
          }, reject);
        });
      });
      toSubscribe = batch;
    }
    const batch = toSubscribe;
    batch.channels.add(ch);
    // Resolves once subscribed. A last listener that left meanwhile queued the channel for the batched UNSUBSCRIBE,
    // which goes out after this SUBSCRIBE on the same connection.
    await batch.done;
  }

  function stopListening(jobId: string): void {
    if (!sub || !channel) return;
    toUnsubscribe.add(channel(jobId));
    unsubscribeTimer ??= setTimeout(flushUnsubscribes, UNSUBSCRIBE_BATCH_MS).unref();
  }

  function flushUnsubscribes(): void {
    unsubscribeTimer = undefined;
    if (!sub || !channel) return;
    const channels: string[] = [];
    for (const ch of toUnsubscribe) {
      const jobId = byChannel.get(ch);
      // Listened to again since: keep it.
      if (jobId !== undefined && entries.has(jobId)) continue;
      byChannel.delete(ch);
      subscribed.delete(ch);
      channels.push(ch);
    }
    toUnsubscribe.clear();
    if (channels.length === 0) return;
    sub.redis.unsubscribe(...channels).catch((err: unknown) => sub.logger.debug({ err, channels: channels.length }, 'could not unsubscribe job event channels'));
  }

  /** Wakes the job's listeners, with the entries recorded when known. */
  function notify(jobId: string, events?: JobEvent[]): void {
    for (const l of [...(entries.get(jobId)?.listeners ?? [])]) l(events);
  }
  function notifyAll(): void {
    for (const entry of [...entries.values()]) for (const l of [...entry.listeners]) l();
  }

  const source: JobEventSource = {
    async subscribe(jobId, listener) {
      let entry = entries.get(jobId);
      if (!entry) {
        const ready = listen(jobId);
        entry = { listeners: new Set(), ready };
        entries.set(jobId, entry);
        // A failed subscription is forgotten, so the next client tries again.
        ready.catch(() => {
          if (entries.get(jobId) === entry) {
            entries.delete(jobId);
            if (channel) byChannel.delete(channel(jobId));
          }
        });
      }
      const mine = entry;
      mine.listeners.add(listener);
      const unsubscribe = () => {
        if (!mine.listeners.delete(listener)) return;
        if (mine.listeners.size === 0 && entries.get(jobId) === mine) {
          entries.delete(jobId);
          stopListening(jobId);
        }
      };
      try {
        await mine.ready;
      } catch (err) {
        unsubscribe();
        throw err;
      }
      return unsubscribe;
    },
    read: options.read ?? (async () => []),
  };
  return {
    source,
    notify,
    get subscribers(): number {
      let n = 0;
      for (const entry of entries.values()) n += entry.listeners.size;
      return n;
    },
  };
}

/**
 * Waiters for job changes in this API process. main.ts feeds it from a private queue bound to
 * job.completed (every replica sees every event); event streams subscribe per job. After a broker
 * reconnect every waiter is woken, since events may have been missed meanwhile: waiters re-read the
 * job from Redis, the source of truth, so a wake-up is only ever a hint.
 */
export interface JobEventSource {
  /** Calls `listener` whenever the job may have changed; returns the unsubscribe function. */
  subscribe(jobId: string, listener: () => void): () => void;
}

export function createJobEventHub() {
  const listeners = new Map<string, Set<() => void>>();
  const source: JobEventSource = {
    subscribe(jobId, listener) {
      let set = listeners.get(jobId);
      if (!set) listeners.set(jobId, (set = new Set()));
      set.add(listener);
      return () => {
        set!.delete(listener);
        if (set!.size === 0 && listeners.get(jobId) === set) listeners.delete(jobId);
      };
    },
  };
  return {
    source,
    notify(jobId: string): void {
      for (const l of [...(listeners.get(jobId) ?? [])]) l();
    },
    notifyAll(): void {
      for (const set of [...listeners.values()]) for (const l of [...set]) l();
    },
    get subscribers(): number {
      let n = 0;
      for (const set of listeners.values()) n += set.size;
      return n;
    },
  };
}

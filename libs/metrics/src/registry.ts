import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The process's one metrics registry: every `lookup_*` metric (catalogue.ts) and prom-client's default process
 * metrics (`process_*`, `nodejs_*`). No default labels: which process a series comes from is the scrape target's
 * label (job, instance), not something each process stamps on itself.
 */
export const registry = new Registry();

let processMetrics = false;

/** Adds prom-client's default process metrics (CPU, memory, event-loop lag, GC) to the registry, once. */
export function enableProcessMetrics(): void {
  if (processMetrics) return;
  processMetrics = true;
  collectDefaultMetrics({ register: registry });
}

/** The registry's text exposition (Prometheus text format 0.0.4) and its content type. */
export async function exposition(): Promise<{ contentType: string; body: string }> {
  flushCounts();
  return { contentType: registry.contentType, body: await registry.metrics() };
}

/** The counts of every `zeroed` child not yet added to prom-client (added at each scrape, by flushCounts). */
const unflushed: (() => void)[] = [];

/** Adds every `zeroed` child's pending count to its counter; exposition() calls it before each scrape. */
export function flushCounts(): void {
  for (const flush of unflushed) flush();
}

type Labels<L extends string> = readonly L[];

/**
 * A metric created on first use and registered then, so a process exposes only the metrics of the code it runs
 * (the saga no lookup_jobs_submitted_total, a worker no job metrics). The same one on every later call.
 */
function lazy<T>(make: () => T): () => T {
  let made: T | undefined;
  return () => (made ??= make());
}

export function lazyCounter<L extends string>(name: string, help: string, labelNames: Labels<L> = []): () => Counter<L> {
  return lazy(() => new Counter<L>({ name, help, labelNames, registers: [registry] }));
}

export function lazyHistogram<L extends string>(name: string, help: string, buckets: number[], labelNames: Labels<L> = []): () => Histogram<L> {
  return lazy(() => new Histogram<L>({ name, help, labelNames, buckets, registers: [registry] }));
}

/**
 * A counter's label child (`counter.labels(...)`) whose series exists from the start at 0: prom-client exposes a
 * labelled series only once it has been incremented, and a series that appears late makes rate() and sums miss
 * the first events.
 *
 * Its `inc` adds to a plain number that reaches the counter at the next scrape (exposition() flushes): prom-client
 * re-derives the label hash on every `inc` of a child (about 2% of a worker's CPU, counting a few increments per
 * task); the exposed values are the same.
 */
export function zeroed<T extends { inc(value?: number): void }>(child: T): T {
  child.inc(0);
  let pending = 0;
  unflushed.push(() => {
    if (pending === 0) return;
    const value = pending;
    pending = 0;
    child.inc(value);
  });
  return {
    ...child,
    inc(value = 1) {
      // What prom-client would refuse, refused at once (not at the next scrape).
      if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
      if (value < 0) throw new Error('It is not possible to decrease a counter');
      pending += value;
    },
  };
}

/** A gauge whose value is read from `read()` at each scrape (nothing to update on the hot path). */
export function gaugeOf(name: string, help: string, read: () => number): Gauge {
  const existing = registry.getSingleMetric(name);
  if (existing) registry.removeSingleMetric(name);
  return new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

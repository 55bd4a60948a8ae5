// The suite's agreed metric names (README, Metrics) and a small PromQL reader, for the tests that check what the
// deployment files (Grafana dashboard, Prometheus and Kubernetes scrape settings) ask Prometheus for.

/** Counters and gauges every process may expose (prom-client; `lookup_` prefix, base units, `_total` counters). */
export const SUITE_METRICS = [
  'lookup_jobs_submitted_total',
  'lookup_jobs_completed_total',
  'lookup_tasks_total',
  'lookup_task_attempts_total',
  'lookup_task_retries_total',
  'lookup_dead_letters_total',
  'lookup_rate_limit_rejections_total',
  'lookup_resource_requests_total',
  'lookup_resource_owned_keys',
  'lookup_resource_failovers_total',
  'lookup_api_service_outcomes_total',
  'lookup_tenant_jobs_held_total',
] as const;
/** Histograms: each is queried as its `_bucket`, `_sum` and `_count` series. */
export const SUITE_HISTOGRAMS = ['lookup_job_duration_seconds', 'lookup_task_duration_seconds', 'lookup_api_service_duration_seconds'] as const;

/** Whether `name` is a series the suite exposes (a histogram's base name alone is not one), or RabbitMQ's plugin's. */
export function isKnownSeries(name: string): boolean {
  if ((SUITE_METRICS as readonly string[]).includes(name)) return true;
  if (SUITE_HISTOGRAMS.some((h) => ['_bucket', '_sum', '_count'].some((suffix) => name === h + suffix))) return true;
  return /^rabbitmq_[a-z0-9_]+$/.test(name);
}

const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan']);

/**
 * The metric names a PromQL expression selects: every identifier that is not a function call, a keyword, a label
 * (in `{...}`, `by (...)`, `on (...)`...), a string, a range or a Grafana variable (`$__rate_interval`).
 */
export function promqlMetricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, ' ');
  const names: string[] = [];
  for (const m of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = bare.slice(m.index! + m[0].length);
    if (/^\s*\(/.test(after)) continue; // a function or aggregation
    if (PROMQL_WORDS.has(m[0].toLowerCase())) continue;
    if (/\d$/.test(bare.slice(0, m.index!))) continue; // the exponent or unit of a number (1e3, 5m)
    names.push(m[0]);
  }
  return names;
}

// The Prometheus text exposition format (0.0.4), parsed in the browser: just enough for the dashboard's service
// panel. Pure functions, no DOM; unit-tested in services/api/src/dashboard-assets.test.ts.

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?\s*$/;

function parseValue(raw) {
  if (raw === '+Inf' || raw === 'Inf') return Infinity;
  if (raw === '-Inf') return -Infinity;
  if (raw === 'NaN') return NaN;
  const n = Number(raw);
  return Number.isNaN(n) ? undefined : n;
}

/** `a="x",b="y \"q\""` -> {a: 'x', b: 'y "q"'}; undefined when malformed. */
function parseLabels(text) {
  const labels = {};
  let i = 0;
  while (i < text.length) {
    while (text[i] === ' ' || text[i] === ',') i++;
    if (i >= text.length) break;
    const eq = text.indexOf('=', i);
    if (eq < 0 || text[eq + 1] !== '"') return undefined;
    const name = text.slice(i, eq).trim();
    let value = '';
    let j = eq + 2;
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === '\\') {
        j++;
        value += text[j] === 'n' ? '\n' : text[j];
      } else value += text[j];
    }
    if (j >= text.length) return undefined;
    labels[name] = value;
    i = j + 1;
  }
  return labels;
}

/** Every sample of the text: [{name, labels, value}]; lines that do not parse are skipped. */
export function parsePrometheusText(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const m = SAMPLE.exec(trimmed);
    if (!m) continue;
    const labels = m[2] ? parseLabels(m[2]) : {};
    const value = parseValue(m[3]);
    if (labels && value !== undefined) samples.push({ name: m[1], labels, value });
  }
  return samples;
}

/**
 * The q-quantile of a histogram from its cumulative buckets [{le, count}] (as Prometheus' histogram_quantile:
 * linear interpolation inside the bucket; the highest finite bound when it falls in +Inf). null without data.
 */
export function histogramQuantile(q, buckets) {
  const sorted = [...buckets].sort((a, b) => a.le - b.le);
  const total = sorted.length ? sorted[sorted.length - 1].count : 0;
  if (!total) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const { le, count } of sorted) {
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      if (count === prevCount) return le;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / (count - prevCount);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

/**
 * Per service, what the API saw of completed jobs (metrics-names.md): `lookup_api_service_outcomes_total{service,
 * outcome}` and the `lookup_api_service_duration_seconds{service}` histogram. Sorted by service name:
 * [{service, succeeded, failed, total, successRate (0-1 or null), meanSeconds, p50Seconds, p95Seconds}].
 */
export function serviceStats(samples) {
  const by = new Map();
  const entry = (service) => {
    if (!by.has(service)) by.set(service, { service, succeeded: 0, failed: 0, sum: 0, count: 0, buckets: [] });
    return by.get(service);
  };
  for (const s of samples) {
    const service = s.labels.service;
    if (service === undefined) continue;
    if (s.name === 'lookup_api_service_outcomes_total') {
      const e = entry(service);
      if (s.labels.outcome === 'succeeded') e.succeeded += s.value;
      else if (s.labels.outcome === 'failed') e.failed += s.value;
    } else if (s.name === 'lookup_api_service_duration_seconds_sum') entry(service).sum += s.value;
    else if (s.name === 'lookup_api_service_duration_seconds_count') entry(service).count += s.value;
    else if (s.name === 'lookup_api_service_duration_seconds_bucket') {
      const le = parseValue(s.labels.le ?? '');
      if (le !== undefined) entry(service).buckets.push({ le, count: s.value });
    }
  }
  return [...by.values()]
    .sort((a, b) => a.service.localeCompare(b.service))
    .map((e) => {
      const total = e.succeeded + e.failed;
      return {
        service: e.service,
        succeeded: e.succeeded,
        failed: e.failed,
        total,
        successRate: total ? e.succeeded / total : null,
        meanSeconds: e.count ? e.sum / e.count : null,
        p50Seconds: histogramQuantile(0.5, e.buckets),
        p95Seconds: histogramQuantile(0.95, e.buckets),
      };
    });
}

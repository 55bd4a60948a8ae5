// The dashboard's browser modules (services/api/dashboard/*.js), run here without a browser: the Prometheus text
// parser against a sample scrape with the agreed metric names (metrics-names.md), and the SSE parser.
import { describe, expect, it } from 'vitest';
import { histogramQuantile, parsePrometheusText, serviceStats } from '../dashboard/prom-text.js';
import { createSseParser, type SseEvent } from '../dashboard/sse.js';

const SCRAPE = `# HELP lookup_jobs_submitted_total Jobs accepted by the API
# TYPE lookup_jobs_submitted_total counter
lookup_jobs_submitted_total 12
# HELP lookup_api_service_outcomes_total Service outcomes of the jobs this API saw complete
# TYPE lookup_api_service_outcomes_total counter
lookup_api_service_outcomes_total{service="GeoIP",outcome="succeeded"} 9
lookup_api_service_outcomes_total{service="GeoIP",outcome="failed"} 1
lookup_api_service_outcomes_total{outcome="succeeded",service="Ping"} 4
lookup_api_service_outcomes_total{service="Ping",outcome="failed"} 0
# HELP lookup_api_service_duration_seconds How long each service took
# TYPE lookup_api_service_duration_seconds histogram
lookup_api_service_duration_seconds_bucket{le="0.005",service="GeoIP"} 2
lookup_api_service_duration_seconds_bucket{le="0.01",service="GeoIP"} 6
lookup_api_service_duration_seconds_bucket{le="0.1",service="GeoIP"} 10
lookup_api_service_duration_seconds_bucket{le="+Inf",service="GeoIP"} 10
lookup_api_service_duration_seconds_sum{service="GeoIP"} 0.07
lookup_api_service_duration_seconds_count{service="GeoIP"} 10
lookup_api_service_duration_seconds_bucket{le="0.5",service="Ping"} 0
lookup_api_service_duration_seconds_bucket{le="1",service="Ping"} 4
lookup_api_service_duration_seconds_bucket{le="+Inf",service="Ping"} 4
lookup_api_service_duration_seconds_sum{service="Ping"} 2.4
lookup_api_service_duration_seconds_count{service="Ping"} 4
lookup_dead_letters_total{queue="lookup.lookup.ping",reason="schema \\"bad\\"\\nline"} 1
process_cpu_user_seconds_total 1.5 1764583200000
nodejs_heap_size_total_bytes 1.2e+07
nodejs_eventloop_lag_seconds NaN
this line is not a sample
`;

describe('dashboard: Prometheus text parser', () => {
  const samples = parsePrometheusText(SCRAPE);

  it('reads every sample with its labels (escapes undone), skipping comments and junk', () => {
    expect(samples).toHaveLength(20);
    expect(samples[0]).toEqual({ name: 'lookup_jobs_submitted_total', labels: {}, value: 12 });
    expect(samples.find((s) => s.name === 'lookup_dead_letters_total')).toEqual({
      name: 'lookup_dead_letters_total', labels: { queue: 'lookup.lookup.ping', reason: 'schema "bad"\nline' }, value: 1,
    });
    expect(samples.find((s) => s.name === 'process_cpu_user_seconds_total')!.value).toBe(1.5); // timestamp ignored
    expect(samples.find((s) => s.name === 'nodejs_heap_size_total_bytes')!.value).toBe(12_000_000);
    expect(samples.find((s) => s.labels.le === '+Inf')!.value).toBe(10);
  });

  it("computes each service's success rate, mean and quantile latency", () => {
    expect(serviceStats(samples)).toEqual([
      { service: 'GeoIP', succeeded: 9, failed: 1, total: 10, successRate: 0.9, meanSeconds: expect.closeTo(0.007, 9), p50Seconds: expect.closeTo(0.00875, 9), p95Seconds: expect.closeTo(0.08875, 9) },
      { service: 'Ping', succeeded: 4, failed: 0, total: 4, successRate: 1, meanSeconds: expect.closeTo(0.6, 9), p50Seconds: expect.closeTo(0.75, 9), p95Seconds: expect.closeTo(0.975, 9) },
    ]);
  });

  it('has nothing to say without the metrics', () => {
    expect(serviceStats(parsePrometheusText(''))).toEqual([]);
    expect(histogramQuantile(0.5, [])).toBeNull();
    expect(histogramQuantile(0.99, [{ le: 1, count: 1 }, { le: Infinity, count: 3 }])).toBe(1); // in +Inf: the highest bound
  });
});

describe('dashboard: SSE parser', () => {
  it('splits events across arbitrary chunk boundaries and line endings, skips comments, keeps the last id', () => {
    const events: SseEvent[] = [];
    const parser = createSseParser((e) => events.push(e));
    const text = ': ping\r\nevent: status\r\ndata: {"a":1}\r\nid: 1-0\r\n\r\nevent: result\ndata: line1\ndata: line2\nid: 2-0\n\n: ping\n\ndata: plain\n\n';
    for (let i = 0; i < text.length; i += 3) parser.push(text.slice(i, i + 3));
    expect(events).toEqual([
      { event: 'status', data: '{"a":1}', id: '1-0' },
      { event: 'result', data: 'line1\nline2', id: '2-0' },
      { event: 'message', data: 'plain', id: '2-0' },
    ]);
    expect(parser.lastId).toBe('2-0');
  });
});

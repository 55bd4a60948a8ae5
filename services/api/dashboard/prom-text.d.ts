export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
export interface ServiceStat {
  service: string;
  succeeded: number;
  failed: number;
  total: number;
  successRate: number | null;
  meanSeconds: number | null;
  p50Seconds: number | null;
  p95Seconds: number | null;
}
export function parsePrometheusText(text: string): PromSample[];
export function histogramQuantile(q: number, buckets: { le: number; count: number }[]): number | null;
export function serviceStats(samples: PromSample[]): ServiceStat[];

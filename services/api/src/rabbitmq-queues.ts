/**
 * A summary of the suite's own queues from RabbitMQ's management HTTP API (GET /api/queues/<vhost>), for the
 * dashboard: depth and consumers of each queue of this NAMESPACE, nothing of anyone else's. When the API cannot be
 * reached or refuses, the answer says so ({available: false, reason}) instead of failing.
 */

export interface QueueInfo {
  name: string;
  messages: number;
  ready: number;
  unacked: number;
  consumers: number;
  /** Messages per second published to / delivered from the queue, when the broker reports rates. */
  publishRate: number | null;
  deliverRate: number | null;
}

export type QueueSummary =
  | { available: true; vhost: string; queues: QueueInfo[] }
  | { available: false; reason: string };

export interface QueueSummaryOptions {
  managementUrl: string;
  amqpUrl: string;
  namespace: string;
  timeoutMs?: number;
}

const COLUMNS = 'name,messages,messages_ready,messages_unacknowledged,consumers,message_stats.publish_details.rate,message_stats.deliver_get_details.rate';
const PAGE_SIZE = 500;

/** The vhost of an AMQP URL (its path, decoded; '/' when empty), as amqplib reads it. */
export function amqpVhost(amqpUrl: string): string {
  try {
    const path = new URL(amqpUrl.split(',')[0]!.trim()).pathname;
    return path.length > 1 ? decodeURIComponent(path.slice(1)) : '/';
  } catch {
    return '/';
  }
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const rate = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? Math.round(v * 100) / 100 : null);

function toQueueInfo(q: Record<string, unknown>): QueueInfo {
  const stats = (q.message_stats ?? {}) as Record<string, { rate?: unknown } | undefined>;
  return {
    name: String(q.name),
    messages: num(q.messages),
    ready: num(q.messages_ready),
    unacked: num(q.messages_unacknowledged),
    consumers: num(q.consumers),
    publishRate: rate(stats.publish_details?.rate),
    deliverRate: rate(stats.deliver_get_details?.rate),
  };
}

/** Returns a function that reads the summary afresh on each call. */
export function createQueueSummary({ managementUrl, amqpUrl, namespace, timeoutMs = 2000 }: QueueSummaryOptions): () => Promise<QueueSummary> {
  const base = new URL(managementUrl);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (base.username) {
    const credentials = `${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`;
    headers.authorization = `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}`;
  }
  base.username = '';
  base.password = '';
  const where = base.origin;
  const vhost = amqpVhost(amqpUrl);
  const prefix = `${namespace}.`;
  const query = new URLSearchParams({ page: '1', page_size: String(PAGE_SIZE), name: `^${escapeRegex(prefix)}`, use_regex: 'true', columns: COLUMNS });
  const url = new URL(`${base.pathname.replace(/\/+$/, '')}/api/queues/${encodeURIComponent(vhost)}?${query}`, base);

  return async () => {
    let res: Response;
    try {
      res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.message);
      return { available: false, reason: `RabbitMQ management API not reachable at ${where} (${why})` };
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      return { available: false, reason: `RabbitMQ management API at ${where} refused the credentials (${res.status}); set RABBITMQ_MANAGEMENT_URL` };
    }
    if (!res.ok) {
      await res.body?.cancel();
      return { available: false, reason: `RabbitMQ management API at ${where} answered ${res.status} for vhost '${vhost}'` };
    }
    let body: unknown;
    try {
      body = await res.json();
    } catch {
      return { available: false, reason: `RabbitMQ management API at ${where} answered something that is not JSON` };
    }
    const items = Array.isArray(body) ? body : (body as { items?: unknown })?.items;
    if (!Array.isArray(items)) return { available: false, reason: `RabbitMQ management API at ${where} answered an unexpected document` };
    const queues = items
      .filter((q): q is Record<string, unknown> => !!q && typeof q === 'object' && String((q as { name?: unknown }).name).startsWith(prefix))
      .map(toQueueInfo)
      .sort((a, b) => a.name.localeCompare(b.name));
    return { available: true, vhost, queues };
  };
}

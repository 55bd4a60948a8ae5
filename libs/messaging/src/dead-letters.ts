import type { ConfirmChannel, GetMessage } from 'amqplib';

/** One message in the dead-letter queue, as an operator sees it. */
export interface DeadLetter {
  messageId: string | null;
  jobId: string | null;
  reason: string | null;
  originalQueue: string | null;
  originalExchange: string;
  routingKey: string;
  deadLetteredAt: string | null;
  /** The body as JSON when it parses, else its text (truncated). */
  body: unknown;
}

export interface DeadLetterSelector {
  /** Only the message(s) with this id; omitted means all. */
  messageId?: string;
}

const STRIP = ['x-dead-letter-reason', 'x-original-queue', 'x-original-exchange', 'x-original-routing-key', 'x-dead-lettered-at', 'x-death', 'x-first-death-exchange', 'x-first-death-queue', 'x-first-death-reason'];

function describe(msg: GetMessage): DeadLetter {
  const h = (msg.properties.headers ?? {}) as Record<string, unknown>;
  const text = msg.content.toString('utf8');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = text.length > 2000 ? `${text.slice(0, 2000)}...` : text;
  }
  const str = (v: unknown) => (v === undefined || v === null ? null : String(v));
  return {
    messageId: str(msg.properties.messageId),
    jobId: str(msg.properties.correlationId),
    reason: str(h['x-dead-letter-reason']) ?? str(h['x-first-death-reason']),
    originalQueue: str(h['x-original-queue']) ?? str(h['x-first-death-queue']),
    originalExchange: str(h['x-original-exchange']) ?? msg.fields.exchange,
    routingKey: str(h['x-original-routing-key']) ?? msg.fields.routingKey,
    deadLetteredAt: str(h['x-dead-lettered-at']),
    body,
  };
}

/**
 * Operations on the dead-letter queue. Messages are taken one at a time; those not selected are returned
 * (nacked with requeue) at the end, so nothing is lost if the operation stops half-way: a taken message is
 * acked only after its replay is confirmed by the broker.
 */
export function deadLetterOps(channel: ConfirmChannel, queue: string) {
  async function take(max: number): Promise<GetMessage[]> {
    const out: GetMessage[] = [];
    while (out.length < max) {
      const msg = await channel.get(queue, { noAck: false });
      if (!msg) break;
      out.push(msg);
    }
    return out;
  }
  const matches = (msg: GetMessage, sel: DeadLetterSelector) => sel.messageId === undefined || msg.properties.messageId === sel.messageId;

  async function list(limit: number): Promise<{ count: number; messages: DeadLetter[] }> {
    const { messageCount } = await channel.checkQueue(queue);
    const taken = await take(limit);
    const messages = taken.map(describe);
    for (const m of taken) channel.nack(m, false, true);
    return { count: Math.max(messageCount, taken.length), messages };
  }

  async function replay(sel: DeadLetterSelector, max = 10_000): Promise<number> {
    const taken = await take(max);
    const done = new Set<GetMessage>();
    try {
      for (const msg of taken) {
        if (!matches(msg, sel)) continue;
        const d = describe(msg);
        const headers = { ...(msg.properties.headers ?? {}) } as Record<string, unknown>;
        for (const k of STRIP) delete headers[k];
        headers['x-replayed-at'] = new Date().toISOString();
        await new Promise<void>((resolve, reject) => {
          channel.publish(d.originalExchange, d.routingKey, msg.content, { ...msg.properties, headers, persistent: true }, (err) => (err ? reject(err) : resolve()));
        });
        channel.ack(msg);
        done.add(msg);
      }
    } finally {
      for (const msg of taken) if (!done.has(msg)) channel.nack(msg, false, true);
    }
    return done.size;
  }

  async function discard(sel: DeadLetterSelector, max = 10_000): Promise<number> {
    const taken = await take(max);
    let discarded = 0;
    for (const msg of taken) {
      if (matches(msg, sel)) {
        channel.ack(msg);
        discarded++;
      } else {
        channel.nack(msg, false, true);
      }
    }
    return discarded;
  }

  return { list, replay, discard };
}
export type DeadLetterOps = ReturnType<typeof deadLetterOps>;

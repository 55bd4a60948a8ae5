import type { ConfirmChannel, GetMessage } from 'amqplib';
import { isUtf8, jsonDepth, MAX_MESSAGE_DEPTH } from './json-safety.ts';
import { PUBLISH_DEFAULTS } from './defaults.ts';

/** One message in the dead-letter queue, as an operator sees it. */
export interface DeadLetter {
  messageId: string | null;
  jobId: string | null;
  reason: string | null;
  originalQueue: string | null;
  originalExchange: string;
  routingKey: string;
  deadLetteredAt: string | null;
  /**
   * The body as JSON when it parses and is safe to render (at most MAX_PREVIEW_BYTES, nested at most
   * MAX_MESSAGE_DEPTH levels); otherwise a preview of its text (`bodyFormat` 'text') or, when it is not UTF-8,
   * of its bytes in base64 ('base64'), truncated to PREVIEW_CHARS characters.
   */
  body: unknown;
  bodyFormat: 'json' | 'text' | 'base64';
  /** Whether `body` is a truncated preview rather than the whole message. */
  bodyTruncated: boolean;
  /** Why the body is shown as a preview (too large, too deeply nested, not JSON, not UTF-8); else null. */
  bodyNote: string | null;
  /** The body's size in bytes. */
  size: number;
  contentType: string | null;
}

export interface DeadLetterSelector {
  /** Only the message(s) with this id; omitted means all. */
  messageId?: string;
}

/** Bodies up to this size are shown parsed (when they are safe JSON); larger ones as a preview. */
export const MAX_PREVIEW_BYTES = 64 * 1024;
const PREVIEW_CHARS = 2000;
const HEADER_CHARS = 2000;

const STRIP = ['x-dead-letter-reason', 'x-original-queue', 'x-original-exchange', 'x-original-routing-key', 'x-dead-lettered-at', 'x-original-expiration', 'x-death', 'x-first-death-exchange', 'x-first-death-queue', 'x-first-death-reason'];

/** A header or property as a bounded string (headers are written by whoever published the message). */
function str(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  let s: string;
  if (typeof v === 'string') s = v;
  else if (Buffer.isBuffer(v)) s = v.toString('utf8', 0, HEADER_CHARS);
  else if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') s = String(v);
  else s = `[${Array.isArray(v) ? 'array' : typeof v}]`;
  return s.length > HEADER_CHARS ? `${s.slice(0, HEADER_CHARS)}...` : s;
}

function preview(content: Buffer): Pick<DeadLetter, 'body' | 'bodyFormat' | 'bodyTruncated' | 'bodyNote'> {
  if (!isUtf8(content)) {
    const bytes = content.subarray(0, (PREVIEW_CHARS / 4) * 3);
    return { body: bytes.toString('base64'), bodyFormat: 'base64', bodyTruncated: bytes.length < content.length, bodyNote: 'not UTF-8: the first bytes, base64' };
  }
  const text = content.length > MAX_PREVIEW_BYTES ? content.subarray(0, MAX_PREVIEW_BYTES).toString('utf8') : content.toString('utf8');
  const truncated = content.length > MAX_PREVIEW_BYTES || text.length > PREVIEW_CHARS;
  const shown = text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS)}...` : text;
  if (content.length > MAX_PREVIEW_BYTES) return { body: shown, bodyFormat: 'text', bodyTruncated: truncated, bodyNote: `larger than ${MAX_PREVIEW_BYTES} bytes: the start of its text` };
  if (jsonDepth(text, MAX_MESSAGE_DEPTH) > MAX_MESSAGE_DEPTH) {
    return { body: shown, bodyFormat: 'text', bodyTruncated: truncated, bodyNote: `nested deeper than ${MAX_MESSAGE_DEPTH} levels: the start of its text` };
  }
  try {
    return { body: JSON.parse(text) as unknown, bodyFormat: 'json', bodyTruncated: false, bodyNote: null };
  } catch {
    return { body: shown, bodyFormat: 'text', bodyTruncated: truncated, bodyNote: 'not JSON: its text' };
  }
}

/** Describes one dead letter; never throws (a listing must not fail because of one message). */
export function describeDeadLetter(msg: Pick<GetMessage, 'content' | 'fields' | 'properties'>): DeadLetter {
  const h = (msg.properties.headers && typeof msg.properties.headers === 'object' ? msg.properties.headers : {}) as Record<string, unknown>;
  let body: Pick<DeadLetter, 'body' | 'bodyFormat' | 'bodyTruncated' | 'bodyNote'>;
  try {
    body = preview(msg.content);
  } catch (err) {
    body = { body: null, bodyFormat: 'text', bodyTruncated: true, bodyNote: `could not be shown: ${String((err as Error)?.message ?? err).slice(0, 200)}` };
  }
  // Dead-lettered by the broker (a quorum queue's delivery limit): its latest x-death entry (the first) says why and
  // from where; x-first-death-* would name an earlier death (a retry's expiry from its delay queue).
  const deaths = h['x-death'];
  const death = Array.isArray(deaths) && deaths[0] && typeof deaths[0] === 'object' ? (deaths[0] as Record<string, unknown>) : undefined;
  return {
    messageId: str(msg.properties.messageId),
    jobId: str(msg.properties.correlationId),
    reason: str(h['x-dead-letter-reason']) ?? str(death?.reason) ?? str(h['x-first-death-reason']),
    originalQueue: str(h['x-original-queue']) ?? str(death?.queue) ?? str(h['x-first-death-queue']),
    originalExchange: str(h['x-original-exchange']) ?? str(death?.exchange) ?? str(msg.fields.exchange) ?? '',
    routingKey: str(h['x-original-routing-key']) ?? str(msg.fields.routingKey) ?? '',
    deadLetteredAt: str(h['x-dead-lettered-at']),
    ...body,
    size: msg.content.length,
    contentType: str(msg.properties.contentType),
  };
}

const describe = describeDeadLetter;

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
          channel.publish(d.originalExchange, d.routingKey, msg.content, { ...msg.properties, headers, persistent: PUBLISH_DEFAULTS.persistent }, (err) => (err ? reject(err) : resolve()));
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

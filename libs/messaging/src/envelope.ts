/**
 * Envelopes: several messages of one exchange and routing key in one AMQP message (README, "Envelopes").
 *
 * RabbitMQ's cost is per message (each persistent message is indexed, written, confirmed, delivered and acked),
 * so the publications that carry per-job traffic (job.submitted, lookup commands, task.completed) send what is
 * published in one event-loop turn together (coalescer.ts). The body is
 *
 *   {"items":[{"p":{"messageId":…,"correlationId":…,"type":<routing key>,"timestamp":…,"headers":{…}},"b":<body>},…]}
 *
 * and the message carries the header `x-envelope: <item count>` and a messageId of its own. Each item keeps the
 * properties a plain message would have had, so a consumer handles it exactly as that plain message (broker.ts):
 * validated, handled, traced and, if it is poison, dead-lettered alone as a plain message.
 */

/** The header that marks an envelope; its value is the number of items. */
export const ENVELOPE_HEADER = 'x-envelope';
/** Most items a consumer accepts in one envelope (MESSAGE_BATCH_MAX is at most this); more: the envelope is malformed. */
export const MAX_ENVELOPE_ITEMS = 256;
/**
 * A publisher closes an envelope before it grows past this many bytes (an item larger than it goes as a plain
 * message), so an envelope stays well below the consumers' MAX_MESSAGE_BYTES (256 KiB).
 */
export const ENVELOPE_MAX_BYTES = 64 * 1024;
const MAX_ID_CHARS = 512;
const MAX_ITEM_HEADERS = 32;

/** The AMQP properties an item keeps inside its envelope. */
export interface ItemProperties {
  messageId: string;
  correlationId?: string;
  /** The routing key it was published with (equal to the envelope's). */
  type: string;
  /** Seconds since the epoch, as the AMQP timestamp property. */
  timestamp?: number;
  /** Application headers (W3C trace context); string, number or boolean values. */
  headers?: Record<string, string | number | boolean>;
}

export interface EnvelopeItem {
  p: ItemProperties;
  b: unknown;
}

/** One item as JSON text, its body already serialized (each body is serialized once, by the publisher). */
export function encodeItem(p: ItemProperties, bodyJson: string): string {
  return `{"p":${JSON.stringify(p)},"b":${bodyJson}}`;
}

/** An envelope's body from its items' JSON (encodeItem). */
export function encodeEnvelope(itemsJson: readonly string[]): string {
  return `{"items":[${itemsJson.join(',')}]}`;
}

/** Whether an AMQP message says it is an envelope (whatever its body turns out to be). */
export function isEnvelope(headers: Record<string, unknown> | undefined): boolean {
  return !!headers && headers[ENVELOPE_HEADER] !== undefined;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks a parsed envelope body against its header and routing key. Returns its items, or why the envelope is
 * malformed (then it is dead-lettered whole: no item of a broken envelope can be trusted to be what it says).
 */
export function decodeEnvelope(body: unknown, header: unknown, routingKey: string): { items: EnvelopeItem[] } | { error: string } {
  const bad = (why: string) => ({ error: `malformed envelope: ${why}` });
  const declared = typeof header === 'number' ? header : typeof header === 'string' && /^\d{1,6}$/.test(header) ? Number(header) : NaN;
  if (!Number.isInteger(declared)) return bad(`its ${ENVELOPE_HEADER} header is not an item count`);
  if (!isPlainObject(body) || !Array.isArray(body.items)) return bad('the body is not {"items": [...]}');
  for (const k in body) if (k !== 'items') return bad(`unexpected field '${k.slice(0, 40)}'`);
  const items = body.items as unknown[];
  if (items.length === 0) return bad('no items');
  if (items.length > MAX_ENVELOPE_ITEMS) return bad(`${items.length} items (limit ${MAX_ENVELOPE_ITEMS})`);
  if (declared !== items.length) return bad(`its ${ENVELOPE_HEADER} header says ${declared} items, the body has ${items.length}`);
  for (let i = 0; i < items.length; i++) {
    const why = itemProblem(items[i], routingKey);
    if (why) return bad(`item ${i}: ${why}`);
  }
  return { items: items as EnvelopeItem[] };
}

function itemProblem(item: unknown, routingKey: string): string | undefined {
  if (!isPlainObject(item)) return 'not an object';
  // for-in, not Object.keys: no array per item (JSON.parse makes plain objects, so there are no inherited keys).
  for (const k in item) if (k !== 'p' && k !== 'b') return `unexpected field '${k.slice(0, 40)}'`;
  if (!('b' in item) || item.b === undefined) return 'no body (b)';
  const p = item.p;
  if (!isPlainObject(p)) return 'no properties (p)';
  for (const k in p) {
    if (k !== 'messageId' && k !== 'correlationId' && k !== 'type' && k !== 'timestamp' && k !== 'headers') return `unexpected property '${k.slice(0, 40)}'`;
  }
  if (typeof p.messageId !== 'string' || p.messageId.length === 0 || p.messageId.length > MAX_ID_CHARS) return 'messageId is not a string of 1-512 characters';
  if (p.correlationId !== undefined && (typeof p.correlationId !== 'string' || p.correlationId.length > MAX_ID_CHARS)) return 'correlationId is not a string of at most 512 characters';
  if (p.type !== routingKey) return `type '${String(p.type).slice(0, 80)}' is not the envelope's routing key '${routingKey}'`;
  if (p.timestamp !== undefined && (typeof p.timestamp !== 'number' || !Number.isFinite(p.timestamp))) return 'timestamp is not a number';
  if (p.headers !== undefined) {
    if (!isPlainObject(p.headers)) return 'headers is not an object';
    let count = 0;
    for (const k in p.headers) {
      if (++count > MAX_ITEM_HEADERS) return `more than ${MAX_ITEM_HEADERS} headers`;
      const v = p.headers[k];
      if (k === ENVELOPE_HEADER) return 'an envelope inside an envelope';
      if (k.startsWith('x-death') || k.startsWith('x-dead-letter')) return `header '${k.slice(0, 40)}' is the broker's or the dead-letter queue's`;
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') return `header '${k.slice(0, 40)}' is not a string, number or boolean`;
    }
  }
  return undefined;
}

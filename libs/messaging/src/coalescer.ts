import { randomUUID } from 'node:crypto';
import { ENVELOPE_HEADER, ENVELOPE_MAX_BYTES, encodeEnvelope, encodeItem, type ItemProperties } from './envelope.ts';

/** What the coalescer hands to the channel: one AMQP message (plain, or an envelope of several). */
export interface OutgoingMessage {
  exchange: string;
  routingKey: string;
  content: Buffer;
  messageId: string;
  correlationId?: string;
  timestamp: number;
  headers?: Record<string, unknown>;
  persistent: boolean;
  mandatory: boolean;
  /** Items in it when it is an envelope; undefined for a plain message. */
  envelopeOf?: number;
}

export interface CoalescerOptions {
  /** Most items in one envelope (MESSAGE_BATCH_MAX, > 1). */
  max: number;
  /** An envelope is closed before its body would pass this many bytes (default ENVELOPE_MAX_BYTES). */
  maxBytes?: number;
  /** Publishes one message and resolves on its confirm; rejects when nacked, returned, timed out or not connected. */
  send: (message: OutgoingMessage) => Promise<void>;
  /** When to flush what was added (default: setImmediate, after this turn's I/O callbacks and microtasks). */
  schedule?: (flush: () => void) => void;
}

interface Item {
  p: ItemProperties;
  bodyJson: string;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface Group {
  exchange: string;
  routingKey: string;
  persistent: boolean;
  mandatory: boolean;
  /** This group's cap on items per envelope (commands: COMMAND_BATCH_MAX); `max` when undefined. */
  max?: number;
  items: Item[];
}

/**
 * Coalesces the publishes of one event-loop turn: those to the same exchange and routing key with the same
 * persistence and mandatory-ness are sent as envelopes of up to `max` items (envelope.ts); a key with a single
 * publish in the turn is sent as the plain message it always was. Every caller's promise settles with the confirm
 * (or nack, return, timeout) of the message its item went in, so "acked after confirm" holds per item.
 */
export class PublishCoalescer {
  private groups = new Map<string, Group>();
  private scheduled = false;
  private readonly maxBytes: number;
  private readonly schedule: (flush: () => void) => void;

  constructor(private readonly options: CoalescerOptions) {
    this.maxBytes = options.maxBytes ?? ENVELOPE_MAX_BYTES;
    this.schedule = options.schedule ?? ((flush) => setImmediate(flush));
  }

  add(exchange: string, routingKey: string, body: unknown, p: Omit<ItemProperties, 'type'>, flags: { persistent: boolean; mandatory: boolean; max?: number }): Promise<void> {
    const bodyJson = JSON.stringify(body);
    const key = `${exchange}\u0000${routingKey}\u0000${flags.persistent ? 1 : 0}${flags.mandatory ? 1 : 0}`;
    let group = this.groups.get(key);
    if (!group) {
      group = { exchange, routingKey, persistent: flags.persistent, mandatory: flags.mandatory, max: flags.max, items: [] };
      this.groups.set(key, group);
    }
    const item: Partial<Item> = { p: { ...p, type: routingKey }, bodyJson };
    const promise = new Promise<void>((resolve, reject) => {
      item.resolve = resolve;
      item.reject = reject;
    });
    group.items.push(item as Item);
    if (!this.scheduled) {
      this.scheduled = true;
      this.schedule(() => this.flush());
    }
    return promise;
  }

  /** Sends everything added so far (called once per turn by the scheduler). */
  flush(): void {
    this.scheduled = false;
    const groups = this.groups;
    this.groups = new Map();
    for (const group of groups.values()) {
      if (group.items.length === 1) {
        this.sendPlain(group, group.items[0]!);
        continue;
      }
      const max = Math.max(1, group.max ?? this.options.max);
      let chunk: Item[] = [];
      let chunkJson: string[] = [];
      let bytes = 0;
      const close = () => {
        if (chunk.length === 1) this.sendPlain(group, chunk[0]!);
        else if (chunk.length > 1) this.sendEnvelope(group, chunk, chunkJson);
        chunk = [];
        chunkJson = [];
        bytes = 0;
      };
      for (const item of group.items) {
        const json = encodeItem(item.p, item.bodyJson);
        // An item that alone fills an envelope goes as a plain message (its own size is the consumer's business).
        if (json.length >= this.maxBytes) {
          this.sendPlain(group, item);
          continue;
        }
        if (chunk.length >= max || bytes + json.length + 1 > this.maxBytes) close();
        chunk.push(item);
        chunkJson.push(json);
        bytes += json.length + 1;
      }
      close();
    }
  }

  private sendPlain(group: Group, item: Item): void {
    const { p } = item;
    this.settle(
      {
        exchange: group.exchange,
        routingKey: group.routingKey,
        content: Buffer.from(item.bodyJson),
        messageId: p.messageId,
        correlationId: p.correlationId,
        timestamp: p.timestamp ?? Math.floor(Date.now() / 1000),
        headers: p.headers,
        persistent: group.persistent,
        mandatory: group.mandatory,
      },
      [item],
    );
  }

  private sendEnvelope(group: Group, items: Item[], itemsJson: string[]): void {
    this.settle(
      {
        exchange: group.exchange,
        routingKey: group.routingKey,
        content: Buffer.from(encodeEnvelope(itemsJson)),
        messageId: randomUUID(),
        timestamp: Math.floor(Date.now() / 1000),
        headers: { [ENVELOPE_HEADER]: items.length },
        persistent: group.persistent,
        mandatory: group.mandatory,
        envelopeOf: items.length,
      },
      items,
    );
  }

  private settle(message: OutgoingMessage, items: Item[]): void {
    let sent: Promise<void>;
    try {
      sent = this.options.send(message);
    } catch (err) {
      sent = Promise.reject(err);
    }
    sent.then(
      () => {
        for (const item of items) item.resolve();
      },
      (err: unknown) => {
        for (const item of items) item.reject(err);
      },
    );
  }
}

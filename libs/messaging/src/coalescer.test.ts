import { describe, expect, it } from 'vitest';
import { PublishCoalescer, type OutgoingMessage } from './coalescer.ts';
import { decodeEnvelope, ENVELOPE_HEADER } from './envelope.ts';

/** A coalescer whose turn ends when the test says (flush) and whose sends the test settles. */
function harness(max = 16, maxBytes?: number) {
  const sent: { message: OutgoingMessage; resolve: () => void; reject: (err: unknown) => void }[] = [];
  let flush: (() => void) | undefined;
  const coalescer = new PublishCoalescer({
    max,
    maxBytes,
    schedule: (f) => void (flush = f),
    send: (message) => new Promise<void>((resolve, reject) => void sent.push({ message, resolve, reject })),
  });
  const add = (key: string, i: number, flags = { persistent: true, mandatory: true }, body: unknown = { n: i }) =>
    coalescer.add('ns.events', key, body, { messageId: `m${i}`, correlationId: `job${i}`, timestamp: 1700000000 + i }, flags);
  const endTurn = () => {
    const f = flush;
    flush = undefined;
    f?.();
  };
  return { sent, add, endTurn };
}

const outcome = (p: Promise<void>) => p.then(() => 'confirmed', (err: Error) => `rejected: ${err.message}`);
const itemsOf = (m: OutgoingMessage) => {
  const decoded = decodeEnvelope(JSON.parse(m.content.toString('utf8')), m.headers?.[ENVELOPE_HEADER], m.routingKey);
  if ('error' in decoded) throw new Error(decoded.error);
  return decoded.items;
};

describe('publish coalescing', () => {
  it('sends the publishes of one turn to one key as one envelope, each item with its own properties', async () => {
    const h = harness();
    const promises = [1, 2, 3].map((i) => outcome(h.add('task.completed', i)));
    expect(h.sent).toHaveLength(0);
    h.endTurn();
    expect(h.sent).toHaveLength(1);
    const { message } = h.sent[0]!;
    expect(message).toMatchObject({ exchange: 'ns.events', routingKey: 'task.completed', persistent: true, mandatory: true, envelopeOf: 3, headers: { [ENVELOPE_HEADER]: 3 } });
    expect(message.messageId).not.toMatch(/^m\d$/);
    expect(itemsOf(message)).toEqual([1, 2, 3].map((i) => ({ p: { messageId: `m${i}`, correlationId: `job${i}`, type: 'task.completed', timestamp: 1700000000 + i }, b: { n: i } })));
    h.sent[0]!.resolve();
    expect(await Promise.all(promises)).toEqual(['confirmed', 'confirmed', 'confirmed']);
  });

  it('sends a lone publish as the plain message it always was', async () => {
    const h = harness();
    const p = outcome(h.add('job.submitted', 7));
    h.endTurn();
    expect(h.sent).toHaveLength(1);
    const { message } = h.sent[0]!;
    expect(message.envelopeOf).toBeUndefined();
    expect(message).toMatchObject({ routingKey: 'job.submitted', messageId: 'm7', correlationId: 'job7', timestamp: 1700000007, headers: undefined });
    expect(JSON.parse(message.content.toString())).toEqual({ n: 7 });
    h.sent[0]!.resolve();
    expect(await p).toBe('confirmed');
  });

  it('keeps routing keys and publish flags apart, and turns apart', () => {
    const h = harness();
    void h.add('lookup.ping', 1);
    void h.add('lookup.ping', 2);
    void h.add('lookup.rdap', 3);
    void h.add('lookup.ping', 4, { persistent: false, mandatory: true });
    h.endTurn();
    void h.add('lookup.ping', 5);
    h.endTurn();
    expect(h.sent.map((s) => [s.message.routingKey, s.message.envelopeOf ?? s.message.messageId])).toEqual([
      ['lookup.ping', 2],
      ['lookup.rdap', 'm3'],
      ['lookup.ping', 'm4'],
      ['lookup.ping', 'm5'],
    ]);
  });

  it('closes an envelope at MESSAGE_BATCH_MAX items (a remainder of one goes plain)', () => {
    const h = harness(4);
    for (let i = 0; i < 9; i++) void h.add('task.completed', i);
    h.endTurn();
    expect(h.sent.map((s) => s.message.envelopeOf ?? 'plain')).toEqual([4, 4, 'plain']);
    expect(h.sent.flatMap((s) => (s.message.envelopeOf ? itemsOf(s.message).map((it) => it.p.messageId) : [s.message.messageId]))).toEqual(
      Array.from({ length: 9 }, (_, i) => `m${i}`),
    );
  });

  it('caps a group that asks for its own maximum (commands: COMMAND_BATCH_MAX) below MESSAGE_BATCH_MAX', () => {
    const h = harness(256);
    for (let i = 0; i < 40; i++) void h.add('lookup.geoip', i, { persistent: true, mandatory: true, max: 16 } as never);
    for (let i = 40; i < 80; i++) void h.add('task.completed', i);
    h.endTurn();
    const byKey = (key: string) => h.sent.filter((s) => s.message.routingKey === key).map((s) => s.message.envelopeOf ?? 'plain');
    expect(byKey('lookup.geoip')).toEqual([16, 16, 8]);
    expect(byKey('task.completed')).toEqual([40]);
  });

  it('splits by bytes so an envelope stays under its cap; an item that alone fills one goes plain', () => {
    const h = harness(16, 1000);
    const filler = 'x'.repeat(300);
    for (let i = 0; i < 5; i++) void h.add('task.completed', i, undefined, { filler });
    void h.add('task.completed', 5, undefined, { filler: 'y'.repeat(2000) });
    h.endTurn();
    for (const s of h.sent) if (s.message.envelopeOf) expect(s.message.content.length).toBeLessThanOrEqual(1000);
    expect(h.sent.map((s) => s.message.envelopeOf ?? s.message.messageId)).toEqual([2, 2, 'm5', 'm4']);
  });

  it('settles every item with its envelope: a nack or a return rejects all of them, other envelopes unaffected', async () => {
    const h = harness(2);
    const promises = [1, 2, 3, 4].map((i) => outcome(h.add('task.completed', i)));
    h.endTurn();
    expect(h.sent).toHaveLength(2);
    h.sent[0]!.reject(new Error('broker did not accept the message'));
    h.sent[1]!.resolve();
    expect(await Promise.all(promises)).toEqual(['rejected: broker did not accept the message', 'rejected: broker did not accept the message', 'confirmed', 'confirmed']);
  });

  it('rejects every item when the send throws (not connected)', async () => {
    const coalescer = new PublishCoalescer({
      max: 16,
      schedule: (f) => f(),
      send: () => {
        throw new Error('not connected to RabbitMQ');
      },
    });
    const flags = { persistent: true, mandatory: true };
    const a = outcome(coalescer.add('x', 'k', 1, { messageId: 'a' }, flags));
    expect(await a).toBe('rejected: not connected to RabbitMQ');
  });
});

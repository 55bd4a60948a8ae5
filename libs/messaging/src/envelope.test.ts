import { describe, expect, it } from 'vitest';
import { decodeEnvelope, encodeEnvelope, encodeItem, ENVELOPE_HEADER, isEnvelope, MAX_ENVELOPE_ITEMS } from './envelope.ts';

const KEY = 'task.completed';
const item = (i: number, extra: Record<string, unknown> = {}) => encodeItem({ messageId: `m${i}`, correlationId: `job${i}`, type: KEY, timestamp: 1700000000, ...extra }, JSON.stringify({ n: i }));

describe('envelope codec', () => {
  it('round-trips items with their own properties and bodies', () => {
    const text = encodeEnvelope([item(1, { headers: { traceparent: '00-abc-def-01' } }), item(2)]);
    const decoded = decodeEnvelope(JSON.parse(text), 2, KEY);
    expect(decoded).toEqual({
      items: [
        { p: { messageId: 'm1', correlationId: 'job1', type: KEY, timestamp: 1700000000, headers: { traceparent: '00-abc-def-01' } }, b: { n: 1 } },
        { p: { messageId: 'm2', correlationId: 'job2', type: KEY, timestamp: 1700000000 }, b: { n: 2 } },
      ],
    });
  });

  it('knows an envelope by its header', () => {
    expect(isEnvelope({ [ENVELOPE_HEADER]: 3 })).toBe(true);
    expect(isEnvelope({ traceparent: 'x' })).toBe(false);
    expect(isEnvelope(undefined)).toBe(false);
  });

  const malformed: [string, unknown, unknown, RegExp][] = [
    ['a header that is no count', { items: [] }, 'many', /header is not an item count/],
    ['a body without items', { things: [] }, 1, /not \{"items"/],
    ['an array body', [1, 2], 2, /not \{"items"/],
    ['an extra field', { items: [{ p: { messageId: 'a', type: KEY }, b: 1 }], more: 1 }, 1, /unexpected field 'more'/],
    ['no items', { items: [] }, 0, /no items/],
    ['too many items', { items: Array.from({ length: MAX_ENVELOPE_ITEMS + 1 }, (_, i) => ({ p: { messageId: `m${i}`, type: KEY }, b: 1 })) }, MAX_ENVELOPE_ITEMS + 1, /items \(limit 256\)/],
    ['a count that lies', { items: [{ p: { messageId: 'a', type: KEY }, b: 1 }] }, 5, /says 5 items, the body has 1/],
    ['an item that is no object', { items: ['x'] }, 1, /item 0: not an object/],
    ['an item without a body', { items: [{ p: { messageId: 'a', type: KEY } }] }, 1, /no body/],
    ['an item without properties', { items: [{ b: 1 }] }, 1, /no properties/],
    ['an item without a messageId', { items: [{ p: { type: KEY }, b: 1 }] }, 1, /messageId/],
    ['an item of another routing key', { items: [{ p: { messageId: 'a', type: 'lookup.ping' }, b: 1 }] }, 1, /type 'lookup.ping' is not the envelope's routing key/],
    ['an envelope inside an envelope', { items: [{ p: { messageId: 'a', type: KEY, headers: { [ENVELOPE_HEADER]: 2 } }, b: { items: [] } }] }, 1, /an envelope inside an envelope/],
    ['nested junk in headers', { items: [{ p: { messageId: 'a', type: KEY, headers: { h: { deep: [1] } } }, b: 1 }] }, 1, /header 'h' is not a string/],
    ['a forged x-death', { items: [{ p: { messageId: 'a', type: KEY, headers: { 'x-death': 'x' } }, b: 1 }] }, 1, /header 'x-death'/],
    ['an unknown property', { items: [{ p: { messageId: 'a', type: KEY, expiration: '5' }, b: 1 }] }, 1, /unexpected property 'expiration'/],
    ['the second item broken', { items: [{ p: { messageId: 'a', type: KEY }, b: 1 }, 7] }, 2, /item 1: not an object/],
  ];
  it.each(malformed)('refuses %s', (_name, body, header, why) => {
    const decoded = decodeEnvelope(body, header, KEY);
    expect('error' in decoded && decoded.error).toMatch(/^malformed envelope: /);
    expect('error' in decoded && decoded.error).toMatch(why);
  });

  it('leaves the bodies to the schema: an item whose body is junk still decodes', () => {
    const decoded = decodeEnvelope({ items: [{ p: { messageId: 'a', type: KEY }, b: { not: 'a task' } }] }, '1', KEY);
    expect(decoded).toEqual({ items: [{ p: { messageId: 'a', type: KEY }, b: { not: 'a task' } }] });
  });
});

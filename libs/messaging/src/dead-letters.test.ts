import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { describeDeadLetter } from './dead-letters.ts';
import { jsonDepth } from './json-safety.ts';

const msg = (content: Buffer, headers: Record<string, unknown> = {}) =>
  ({ content, fields: { exchange: 'ns.events', routingKey: 'job.submitted' }, properties: { headers, messageId: 'm' } }) as unknown as Parameters<typeof describeDeadLetter>[0];

describe('describeDeadLetter', () => {
  it('never throws, and what it returns always serialises, whatever the body and headers', () => {
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
      fc.json().map((j) => Buffer.from(j)),
      fc.integer({ min: 1, max: 50_000 }).map((n) => Buffer.from('['.repeat(n) + ']'.repeat(n))),
      fc.integer({ min: 1, max: 20_000 }).map((n) => Buffer.from('{"a":'.repeat(n) + '1' + '}'.repeat(n))),
      fc.string({ maxLength: 100 }).map((s) => Buffer.from(s)),
    );
    const header = fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.array(fc.string()), fc.object(), fc.uint8Array().map((b) => Buffer.from(b)));
    fc.assert(
      fc.property(body, fc.dictionary(fc.constantFrom('x-dead-letter-reason', 'x-original-queue', 'x-original-exchange', 'x-death'), header), (content, headers) => {
        const d = describeDeadLetter(msg(content, headers));
        expect(() => JSON.stringify(d)).not.toThrow();
        expect(d.size).toBe(content.length);
        if (d.bodyFormat === 'json') expect(jsonDepth(JSON.stringify(d.body))).toBeLessThanOrEqual(32);
        for (const v of [d.reason, d.originalQueue, d.originalExchange]) if (v !== null) expect(typeof v).toBe('string');
      }),
      { seed: 9, numRuns: 500 },
    );
  });

  it('shows safe JSON parsed, and anything else as a bounded preview with the reason', () => {
    expect(describeDeadLetter(msg(Buffer.from('{"a":[1,{"b":2}]}')))).toMatchObject({ body: { a: [1, { b: 2 }] }, bodyFormat: 'json', bodyTruncated: false, bodyNote: null });
    expect(describeDeadLetter(msg(Buffer.from('{oops')))).toMatchObject({ body: '{oops', bodyFormat: 'text', bodyNote: 'not JSON: its text' });
    expect(describeDeadLetter(msg(Buffer.from([0xff, 0x00])))).toMatchObject({ body: '/wA=', bodyFormat: 'base64' });
    const deep = describeDeadLetter(msg(Buffer.from('['.repeat(100) + ']'.repeat(100))));
    expect(deep).toMatchObject({ bodyFormat: 'text', bodyNote: 'nested deeper than 32 levels: the start of its text' });
    const huge = describeDeadLetter(msg(Buffer.from(JSON.stringify({ s: 'x'.repeat(100_000) }))));
    expect(huge).toMatchObject({ bodyFormat: 'text', bodyTruncated: true });
    expect(String(huge.body).length).toBeLessThanOrEqual(2003);
  });
});

describe('describeDeadLetter for messages the broker dead-lettered', () => {
  it('takes the reason, queue and exchange from the latest x-death entry (a quorum delivery limit after a retry expired)', () => {
    const headers = {
      'x-death': [
        { count: 1, reason: 'delivery_limit', queue: 'ns.lookup.geoip', exchange: 'ns.commands', 'routing-keys': ['lookup.geoip'] },
        { count: 1, reason: 'expired', queue: 'ns.delay.geoip.256ms', exchange: 'ns.retry', 'original-expiration': '256' },
      ],
      'x-first-death-reason': 'expired',
      'x-first-death-queue': 'ns.delay.geoip.256ms',
      'x-first-death-exchange': 'ns.retry',
    };
    const d = describeDeadLetter({ content: Buffer.from('{}'), fields: { exchange: 'ns.dead-letter', routingKey: 'lookup.geoip' }, properties: { headers } } as never);
    expect(d).toMatchObject({ reason: 'delivery_limit', originalQueue: 'ns.lookup.geoip', originalExchange: 'ns.commands', routingKey: 'lookup.geoip' });
  });

  it('prefers the suite\'s own reason headers when present', () => {
    const d = describeDeadLetter(msg(Buffer.from('{}'), { 'x-dead-letter-reason': 'invalid JSON', 'x-original-queue': 'ns.saga', 'x-death': [{ reason: 'expired', queue: 'q' }] }));
    expect(d).toMatchObject({ reason: 'invalid JSON', originalQueue: 'ns.saga' });
  });
});

describe('jsonDepth', () => {
  it('counts nesting outside strings', () => {
    expect(jsonDepth('{"a":"[[[[","b":[1,[2]]}')).toBe(3);
    expect(jsonDepth('"\\"[["')).toBe(0);
    expect(jsonDepth('[[[[[', 2)).toBe(3);
  });
});

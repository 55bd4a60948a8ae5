import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { QUORUM_DELIVERY_LIMIT, loadConfig } from '@lookup/config';
import { deadLetterArguments, declarations, delayBuckets, delayMsBucket, queueTypeArguments, resourceQueues, topology, DELAY_BUCKETS_MS, MAX_DELAY_BUCKET_MS, MIN_DELAY_BUCKET_MS } from './topology.ts';

// The worker's backoff (worker-kit run-lookup.ts): between half and all of min(max, base * 2^(n-2)).
const backoff = (base: number, max: number, n: number, r: number) => {
  const cap = Math.min(max, base * 2 ** Math.max(0, n - 2));
  return Math.round(cap / 2 + r * (cap / 2));
};

describe('delay queues', () => {
  it('put a delay in the smallest bucket that holds it: at most a quarter-octave (about 19 %) longer', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3_600_000 }), (d) => {
        const b = delayMsBucket(d);
        expect(DELAY_BUCKETS_MS).toContain(b);
        expect(b).toBeGreaterThanOrEqual(Math.max(d, MIN_DELAY_BUCKET_MS));
        expect(b).toBeLessThanOrEqual(Math.max(Math.ceil(d * 2 ** 0.25) + 1, MIN_DELAY_BUCKET_MS));
      }),
      { seed: 10, numRuns: 2000 },
    );
    expect(delayMsBucket(10 ** 9)).toBe(MAX_DELAY_BUCKET_MS);
    expect(new Set(DELAY_BUCKETS_MS).size).toBe(DELAY_BUCKETS_MS.length);
  });

  it('declare a bucket for every backoff the configured retries can produce, each with its TTL and way back', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 10 }), fc.integer({ min: 10, max: 600_000 }), fc.integer({ min: 10, max: 3_600_000 }), fc.double({ min: 0, max: 1, noNaN: true }), (maxAttempts, base, max, r) => {
        const options = { maxAttempts, retryDelays: { baseMs: base, maxMs: max } };
        const t = topology('ns');
        const queues = new Map(declarations('ns', options).queues.map((q) => [q.name, q]));
        for (let n = 2; n <= maxAttempts; n++) {
          const d = backoff(base, max, n, r);
          const bucket = delayMsBucket(d);
          expect(delayBuckets(options)).toContain(bucket);
          const q = queues.get(t.queues.delay('geoip', bucket))!;
          expect(q.arguments).toEqual({ 'x-message-ttl': bucket, 'x-dead-letter-exchange': 'ns.commands', 'x-dead-letter-routing-key': 'lookup.geoip' });
          expect(q.bindings).toEqual([{ exchange: 'ns.retry', routingKey: t.delayKey('geoip', d) }]);
          expect(t.delayQueueBucket(q.name)).toBe(bucket);
        }
      }),
      { seed: 11, numRuns: 300 },
    );
  });

  it("a high or low command's delay queues dead-letter to its priority's work queue, normal ones to the normal queue", () => {
    const t = topology('ns');
    const queues = declarations('ns', { maxAttempts: 3, retryDelays: { baseMs: 100, maxMs: 30_000 } }).queues;
    const bucket = delayMsBucket(100);
    for (const [slug, key] of [['rdap', 'lookup.rdap'], ['rdap.high', 'lookup.rdap.high'], ['rdap.low', 'lookup.rdap.low']] as const) {
      const q = queues.find((d) => d.name === t.queues.delay(slug, bucket));
      expect(q?.arguments).toMatchObject({ 'x-message-ttl': bucket, 'x-dead-letter-exchange': 'ns.commands', 'x-dead-letter-routing-key': key });
      expect(q?.bindings).toEqual([{ exchange: 'ns.retry', routingKey: t.delayKey(slug, bucket) }]);
      expect(t.queueRole(q!.name)).toBe(`delay.${slug}.${bucket}ms`);
      // The work queue of that priority is bound to the key the delay queue dead-letters with.
      expect(queues.some((w) => w.bindings.some((b) => b.exchange === 'ns.commands' && b.routingKey === key) && !w.name.startsWith('ns.delay.'))).toBe(true);
    }
  });

  it('without a retry config, declare every bucket (cleanup), and recognise only this namespace\'s delay queues', () => {
    const names = declarations('ns').queues.map((q) => q.name).filter((n) => /^ns\.delay\.geoip\.[0-9]+ms$/.test(n));
    expect(names).toHaveLength(DELAY_BUCKETS_MS.length);
    const t = topology('ns');
    expect(t.delayQueueBucket('ns.delay.ping.128ms')).toBe(128);
    expect(t.delayQueueBucket('ns.delay.ping.high.128ms')).toBe(128);
    expect(t.delayQueueBucket('ns.delay.ping.medium.128ms')).toBeUndefined();
    expect(t.delayQueueBucket('other.delay.ping.128ms')).toBeUndefined();
    expect(t.delayQueueBucket('ns.lookup.ping')).toBeUndefined();
    expect(t.delayQueueBucket('ns.retry.ping.2')).toBeUndefined();
  });
});

describe('topology names', () => {
  it('name every queue and exchange under the namespace, the resource RPC queues included', () => {
    const t = topology('ns');
    const names = [
      ...Object.values(t.exchanges),
      t.queues.saga,
      t.queues.deadLetter,
      t.queues.lookup('geoip'),
      t.queues.delay('geoip', 16),
      t.queues.resource('w1'),
      t.queues.resourceReply('i1'),
    ];
    for (const name of names) expect(name.startsWith('ns.')).toBe(true);
    expect(t.queues.resource('w1')).toBe('ns.resource.w1');
    expect(t.queues.resourceReply('i1')).toBe('ns.resource-reply.i1');
    expect(resourceQueues('ns').worker('w1')).toBe(t.queues.resource('w1'));
    expect(resourceQueues('ns').reply('')).toBe('ns.resource-reply.');
  });
});

describe('queue types', () => {
  const queues = (queueType?: 'classic' | 'quorum') => new Map(declarations('ns', { maxAttempts: 3, retryDelays: { baseMs: 500, maxMs: 30_000 }, queueType }).queues.map((q) => [q.name, q]));

  it('classic (the default) adds no argument, so queues declared before QUEUE_TYPE existed still match', () => {
    for (const [name, q] of queues()) {
      expect(q.arguments?.['x-queue-type'], name).toBeUndefined();
      expect(Object.keys(q.arguments ?? {}).filter((k) => !['x-dead-letter-exchange', 'x-dead-letter-routing-key', 'x-message-ttl'].includes(k)), name).toEqual([]);
    }
    expect(queues('classic')).toEqual(queues());
  });

  it('quorum: every durable queue is a quorum queue; work and delay queues dead-letter at least once; work queues have the delivery limit', () => {
    const t = topology('ns');
    const all = queues('quorum');
    for (const [name, q] of all) expect(q.arguments?.['x-queue-type'], name).toBe('quorum');
    const atLeastOnce = { 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' };
    for (const name of [t.queues.saga, t.queues.lookup('geoip'), t.queues.lookup('rdap')]) {
      expect(all.get(name)!.arguments).toEqual({ 'x-queue-type': 'quorum', 'x-dead-letter-exchange': 'ns.dead-letter', ...atLeastOnce, 'x-delivery-limit': QUORUM_DELIVERY_LIMIT });
    }
    const delay = [...all.values()].filter((q) => t.delayQueueBucket(q.name) !== undefined);
    expect(delay.length).toBeGreaterThan(0);
    for (const q of delay) {
      expect(q.arguments).toMatchObject({ 'x-message-ttl': t.delayQueueBucket(q.name), 'x-dead-letter-exchange': 'ns.commands', ...atLeastOnce });
      expect(q.arguments!['x-delivery-limit']).toBeUndefined();
    }
    expect(all.get(t.queues.deadLetter)!.arguments).toEqual({ 'x-queue-type': 'quorum' });
    expect(deadLetterArguments('quorum')).toEqual({ arguments: { 'x-queue-type': 'quorum' } });
    expect(deadLetterArguments('classic')).toEqual({});
  });

  it('the quorum delivery limit sits above every DELIVERY_LIMIT config allows with quorum, so the consumer\'s guard acts first', () => {
    expect(queueTypeArguments('quorum', 'work')['x-delivery-limit']).toBe(QUORUM_DELIVERY_LIMIT);
    expect(() => loadConfig({ QUEUE_TYPE: 'quorum', DELIVERY_LIMIT: String(QUORUM_DELIVERY_LIMIT + 1) })).toThrow(/DELIVERY_LIMIT/);
  });
});

describe('queueRole (the queue label of lookup_dead_letters_total)', () => {
  it('names a queue by its role without the namespace; private queues by their kind; anything else other', () => {
    const t = topology('ns1');
    expect(t.queueRole(t.queues.saga)).toBe('saga');
    expect(t.queueRole(t.queues.lookup('reverse-dns'))).toBe('lookup.reverse-dns');
    expect(t.queueRole(t.queues.lookupPriority('reverse-dns', 'high'))).toBe('lookup.reverse-dns.high');
    expect(t.queueRole(t.queues.lookupPriority('ping', 'low'))).toBe('lookup.ping.low');
    expect(t.queueRole(t.queues.callbacks)).toBe('callbacks');
    expect(t.queueRole('ns1.api.host-42-abcdef')).toBe('api'); // an earlier version's API queue
    expect(t.queueRole(t.queues.resource('w-1'))).toBe('resource');
    expect(t.queueRole(t.queues.resourceReply('host-42'))).toBe('resource-reply');
    expect(t.queueRole('amq.gen-XYZ')).toBe('other');
    expect(t.queueRole('ns2.saga')).toBe('other');
    expect(t.queueRole('ns1.lookup.x.y')).toBe('other');
  });
});

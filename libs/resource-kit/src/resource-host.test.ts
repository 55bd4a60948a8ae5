import { describe, expect, it } from 'vitest';
import type { ResourceReplyMessage, ResourceRequestMessage } from '@lookup/contracts';
import { leaseTimings } from '@lookup/coordination';
import { loadConfig } from '@lookup/config';
import { createLogger } from '@lookup/logging';
import { ResourceHost } from './resource-host.ts';
import { ResourceHttpError, type ResourceType } from './types.ts';

const timings = leaseTimings({ heartbeatMs: 1000, maxMissed: 3 }); // local validity 2400 ms
const logger = createLogger({ service: 'test', level: 'silent' });
const tick = () => new Promise((r) => setImmediate(r));

function setup(options: { concurrency?: number; env?: Record<string, string>; accept?: ResourceType<{ key: string }>['accept'] } = {}) {
  let now = 0;
  const replies: ResourceReplyMessage[] = [];
  const log: string[] = [];
  let active = 0;
  let maxActive = 0;
  const gates: (() => void)[] = [];
  const leases = new Map<string, number>(); // key -> epoch granted to us
  const released: string[] = [];
  const type: ResourceType<{ key: string }> = {
    name: 'fake',
    concurrency: options.concurrency,
    accept: options.accept,
    open: (key) => {
      log.push(`open ${key}`);
      return { key };
    },
    handle: async (request, _r, ctx) => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      log.push(`start ${request.requestId}`);
      await new Promise<void>((r) => gates.push(r));
      active -= 1;
      ctx.assertOwner();
      log.push(`end ${request.requestId}`);
      return { status: 200, body: { id: request.requestId } };
    },
    close: (r, ctx) => void log.push(`close ${r.key} (${ctx.reason})`),
  };
  const host = new ResourceHost({
    type,
    workerId: 'w1',
    timings,
    config: loadConfig(options.env ?? {}),
    logger,
    clock: () => now,
    reply: (_t, body) => (replies.push(body), true),
    directory: {
      adopt: async (_w, key, epoch) => leases.get(key) === epoch,
      heartbeat: async (_w, held) => ({ draining: false, statuses: held.map((h) => (leases.get(h.key) === h.epoch ? 'renewed' : 'lost')) }),
      release: async (_w, key, epoch) => {
        if (leases.get(key) !== epoch) return false;
        leases.delete(key);
        released.push(key);
        return true;
      },
      leave: async () => undefined,
    },
  });
  const request = (requestId: string, key = 'k', epoch = 1): ResourceRequestMessage => ({
    type: 'request', requestId, key, epoch, method: 'POST', query: '', headers: {}, body: '', deadline: Date.now() + 10_000,
  });
  const send = (m: ResourceRequestMessage) => host.onMessage(m, { replyTo: 'r', correlationId: m.requestId });
  const release = async () => {
    while (gates.length === 0) await tick();
    gates.shift()!();
    await tick();
  };
  const settle = async () => {
    for (let i = 0; i < 20; i++) await tick();
  };
  return { host, replies, log, leases, released, send, request, release, settle, setNow: (t: number) => (now = t), maxActive: () => maxActive };
}

describe('ResourceHost', () => {
  it('handles requests for one key one at a time, in arrival order', async () => {
    const h = setup();
    h.leases.set('k', 1);
    for (const id of ['r1', 'r2', 'r3']) h.send(h.request(id));
    for (let i = 0; i < 3; i++) await h.release();
    await tick();
    expect(h.log).toEqual(['open k', 'start r1', 'end r1', 'start r2', 'end r2', 'start r3', 'end r3']);
    expect(h.maxActive()).toBe(1);
    expect(h.replies.map((r) => r.type)).toEqual(['response', 'response', 'response']);
  });

  it('runs requests for one key concurrently when the type opts in', async () => {
    const h = setup({ concurrency: 3 });
    h.leases.set('k', 1);
    for (const id of ['r1', 'r2', 'r3']) h.send(h.request(id));
    for (let i = 0; i < 3; i++) await h.release();
    expect(h.maxActive()).toBe(3);
  });

  it('refuses an epoch it does not hold, and a stale epoch once it holds a newer one', async () => {
    const h = setup();
    h.leases.set('k', 2);
    h.send(h.request('old', 'k', 1));
    await tick();
    await tick();
    expect(h.replies[0]).toMatchObject({ type: 'refused', reason: 'not-owner' });
    h.send(h.request('new', 'k', 2));
    await h.release();
    h.send(h.request('stale', 'k', 1));
    await tick();
    await tick();
    expect(h.replies.map((r) => (r.type === 'refused' ? r.reason : r.type))).toEqual(['not-owner', 'response', 'stale-epoch']);
  });

  it('stops serving and closes the resource at its local deadline, before the lease can move', async () => {
    const h = setup();
    h.leases.set('k', 1);
    h.send(h.request('r1'));
    await h.release();
    expect(h.host.held).toEqual([{ key: 'k', epoch: 1 }]);
    // No renewal: past sent + ttl - margin the worker no longer considers the key its own...
    h.setNow(timings.localValidityMs);
    expect(h.host.held).toEqual([]);
    // ...and a request still carrying its epoch is refused, the resource closed.
    h.send(h.request('late'));
    await tick();
    await tick();
    expect(h.replies.at(-1)).toMatchObject({ type: 'refused', reason: 'lease-lost' });
    expect(h.log).toContain('close k (lease expired)');
  });

  it('refuses a request whose lease runs out while it is being handled', async () => {
    const h = setup();
    h.leases.set('k', 1);
    h.send(h.request('slow'));
    while (h.log.length < 2) await tick();
    h.setNow(timings.localValidityMs + 1);
    await h.release();
    await tick();
    expect(h.replies.at(-1)).toMatchObject({ type: 'refused', reason: 'lease-lost' });
    expect(h.log).not.toContain('end slow');
  });

  it('pins nothing for a request the type refuses: no open, and the placed lease is given back', async () => {
    const h = setup({
      accept: (r) => {
        if (r.method !== 'POST') throw new ResourceHttpError(405, { error: 'Method not allowed', message: 'Use POST', code: 'METHOD_NOT_ALLOWED' });
      },
    });
    h.leases.set('k', 1);
    h.send({ ...h.request('bad'), method: 'GET' });
    await h.settle();
    expect(h.replies[0]).toMatchObject({ type: 'response', status: 405, epoch: 1 });
    expect(h.log).toEqual([]);
    expect(h.released).toEqual(['k']);
    expect(h.host.held).toEqual([]);
    // Once the key is open under that epoch, a refused request leaves it pinned.
    h.leases.set('k', 2);
    h.send(h.request('good', 'k', 2));
    await h.release();
    h.send({ ...h.request('bad2', 'k', 2), method: 'GET' });
    await h.settle();
    expect(h.replies.at(-1)).toMatchObject({ status: 405 });
    expect(h.host.held).toEqual([{ key: 'k', epoch: 2 }]);
    expect(h.released).toEqual(['k']);
  });

  it('closes and releases a key idle for RESOURCE_IDLE_MS', async () => {
    const h = setup({ env: { RESOURCE_IDLE_MS: '1000' } });
    h.leases.set('k', 1);
    h.send(h.request('r1'));
    await h.release();
    (h.host as unknown as { expireSlots(): void }).expireSlots();
    await h.settle();
    expect(h.host.held).toEqual([{ key: 'k', epoch: 1 }]);
    h.setNow(1000);
    (h.host as unknown as { expireSlots(): void }).expireSlots();
    await h.settle();
    expect(h.host.held).toEqual([]);
    expect(h.log).toContain('close k (idle for 1000 ms (RESOURCE_IDLE_MS))');
    expect(h.released).toEqual(['k']);
  });

  it('keeps at most RESOURCE_MAX_OPEN keys open: closes the least recently used idle one, or answers 503', async () => {
    const h = setup({ env: { RESOURCE_MAX_OPEN: '2' } });
    for (const k of ['a', 'b', 'c', 'd']) h.leases.set(k, 1);
    h.send(h.request('ra', 'a'));
    await h.release();
    h.setNow(10);
    h.send(h.request('rb', 'b'));
    await h.release();
    h.setNow(20);
    h.send(h.request('rc', 'c')); // a is the least recently used: closed to make room
    await h.release();
    expect(h.log).toContain('close a (least recently used, to stay within 2 open resources (RESOURCE_MAX_OPEN))');
    expect(h.released).toEqual(['a']);
    expect(h.host.held.map((x) => x.key).sort()).toEqual(['b', 'c']);
    // b busy, c busy: no room for d.
    h.send(h.request('rb2', 'b'));
    h.send(h.request('rc2', 'c'));
    await h.settle();
    h.send(h.request('rd', 'd'));
    await h.settle();
    const refused = h.replies.find((r) => r.requestId === 'rd');
    expect(refused).toMatchObject({ type: 'response', status: 503 });
    expect(refused && refused.type === 'response' && refused.headers['retry-after']).toBeTruthy();
    expect(refused && refused.type === 'response' && bodyOf(refused)).toMatchObject({
      error: 'Too many open resources',
      code: 'TOO_MANY_OPEN_RESOURCES',
      details: { maxOpen: 2 },
    });
    expect(h.released).toEqual(['a', 'd']);
    expect(h.log).not.toContain('open d');
    await h.release();
    await h.release();
  });

  it('answers every error with the one error body {error, message, code?, details?}: refusals and unexpected failures', async () => {
    const h = setup({
      accept: (r) => {
        if (r.requestId === 'refused') {
          throw new ResourceHttpError(403, { error: 'Statement not allowed', message: 'ATTACH is not allowed', code: 'STATEMENT_NOT_ALLOWED', details: { rule: 'ATTACH' } });
        }
        if (r.requestId === 'crash') throw new Error('secret internal detail');
      },
    });
    h.leases.set('k', 1);
    h.send(h.request('refused'));
    h.send(h.request('crash'));
    await h.settle();
    const refused = h.replies.find((r) => r.requestId === 'refused');
    const crash = h.replies.find((r) => r.requestId === 'crash');
    expect(refused).toMatchObject({ type: 'response', status: 403, headers: { 'content-type': 'application/json; charset=utf-8' } });
    expect(refused?.type === 'response' && bodyOf(refused)).toEqual({
      error: 'Statement not allowed',
      message: 'ATTACH is not allowed',
      code: 'STATEMENT_NOT_ALLOWED',
      details: { rule: 'ATTACH' },
    });
    expect(crash).toMatchObject({ type: 'response', status: 500 });
    const body = crash?.type === 'response' ? bodyOf(crash) : undefined;
    expect(Object.keys(body ?? {}).sort()).toEqual(['code', 'error', 'message']);
    expect(body).toMatchObject({ error: 'Internal error', code: 'INTERNAL_ERROR', message: expect.any(String) });
    expect(JSON.stringify(body)).not.toContain('secret');
  });
});

function bodyOf(reply: { body?: string }): Record<string, unknown> {
  return JSON.parse(Buffer.from(reply.body ?? '', 'base64').toString('utf8')) as Record<string, unknown>;
}

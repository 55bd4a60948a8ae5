import { describe, expect, it } from 'vitest';
import type { ResourceReplyMessage, ResourceRequestMessage } from '@lookup/contracts';
import { leaseTimings } from '@lookup/coordination';
import { loadConfig } from '@lookup/config';
import { createLogger } from '@lookup/logging';
import { ResourceHost } from './resource-host.ts';
import type { ResourceType } from './types.ts';

const timings = leaseTimings({ heartbeatMs: 1000, maxMissed: 3 }); // local validity 2400 ms
const logger = createLogger({ service: 'test', level: 'silent' });
const tick = () => new Promise((r) => setImmediate(r));

function setup(options: { concurrency?: number } = {}) {
  let now = 0;
  const replies: ResourceReplyMessage[] = [];
  const log: string[] = [];
  let active = 0;
  let maxActive = 0;
  const gates: (() => void)[] = [];
  const leases = new Map<string, number>(); // key -> epoch granted to us
  const type: ResourceType<{ key: string }> = {
    name: 'fake',
    concurrency: options.concurrency,
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
    config: loadConfig({}),
    logger,
    clock: () => now,
    reply: (_t, body) => (replies.push(body), true),
    directory: {
      adopt: async (_w, key, epoch) => leases.get(key) === epoch,
      heartbeat: async (_w, held) => ({ draining: false, statuses: held.map((h) => (leases.get(h.key) === h.epoch ? 'renewed' : 'lost')) }),
      release: async () => true,
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
  return { host, replies, log, leases, send, request, release, setNow: (t: number) => (now = t), maxActive: () => maxActive };
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
});

import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { keys, type Redis } from '@lookup/store';
import { createLogger } from '@lookup/logging';
import { createJobEventHub, UNSUBSCRIBE_BATCH_MS } from './job-events.js';

/** A subscriber connection that records its SUBSCRIBE and UNSUBSCRIBE commands. */
function fakeSubscriber() {
  const emitter = new EventEmitter();
  const commands: string[][] = [];
  const redis = Object.assign(emitter, {
    status: 'ready',
    async subscribe(...channels: string[]) {
      commands.push(['SUBSCRIBE', ...channels]);
      return channels.length;
    },
    async unsubscribe(...channels: string[]) {
      commands.push(['UNSUBSCRIBE', ...channels]);
      return 0;
    },
  });
  return { redis: redis as unknown as Redis, commands, publish: (ch: string, msg: string) => emitter.emit('message', ch, msg) };
}

const ns = 'hub-test';
const A = '11111111-1111-4111-8111-111111111111';
const B = '22222222-2222-4222-8222-222222222222';
const channel = keys(ns).jobEvents;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('job event hub subscriptions', () => {
  it('subscribes the channels asked for in one turn with one SUBSCRIBE, and unsubscribes finished ones in one batch', async () => {
    const sub = fakeSubscriber();
    const hub = createJobEventHub({ subscriber: { redis: sub.redis, namespace: ns, logger: createLogger({ service: 'api', level: 'silent' }) } });
    const heard: string[] = [];
    const [offA, offB] = await Promise.all([
      hub.source.subscribe(A, (e) => heard.push(`A:${e?.length ?? 'wake'}`)),
      hub.source.subscribe(B, (e) => heard.push(`B:${e?.length ?? 'wake'}`)),
    ]);
    expect(sub.commands).toEqual([['SUBSCRIBE', channel(A), channel(B)]]);

    sub.publish(channel(A), '1764576000123-0 result 1');
    expect(heard).toEqual(['A:1']);

    offA();
    offB();
    // A message on a channel nobody listens to any more is dropped.
    sub.publish(channel(A), '1764576000124-0 result 2');
    expect(heard).toEqual(['A:1']);
    expect(sub.commands).toHaveLength(1);
    await sleep(UNSUBSCRIBE_BATCH_MS + 50);
    expect(sub.commands[1]?.[0]).toBe('UNSUBSCRIBE');
    expect(sub.commands[1]?.slice(1).sort()).toEqual([channel(A), channel(B)].sort());
  });

  it('keeps a channel that is listened to again before the batch goes out, without a second SUBSCRIBE', async () => {
    const sub = fakeSubscriber();
    const hub = createJobEventHub({ subscriber: { redis: sub.redis, namespace: ns, logger: createLogger({ service: 'api', level: 'silent' }) } });
    const off = await hub.source.subscribe(A, () => undefined);
    off();
    const heard: string[] = [];
    const off2 = await hub.source.subscribe(A, () => heard.push('again'));
    await sleep(UNSUBSCRIBE_BATCH_MS + 50);
    expect(sub.commands).toEqual([['SUBSCRIBE', channel(A)]]);
    sub.publish(channel(A), '1764576000125-0 result 1');
    expect(heard).toEqual(['again']);
    off2();
    await sleep(UNSUBSCRIBE_BATCH_MS + 50);
    expect(sub.commands).toEqual([['SUBSCRIBE', channel(A)], ['UNSUBSCRIBE', channel(A)]]);
    // After the UNSUBSCRIBE, a new listener subscribes again.
    await hub.source.subscribe(A, () => undefined);
    expect(sub.commands[2]).toEqual(['SUBSCRIBE', channel(A)]);
  });
});

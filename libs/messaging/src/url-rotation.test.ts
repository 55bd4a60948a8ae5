import { describe, expect, it } from 'vitest';
import { UrlRotation } from './url-rotation.ts';

const three = 'amqp://u:p@127.0.0.1:1,amqp://u:p@127.0.0.1:2,amqp://u:p@127.0.0.1:3';
const port = (r: UrlRotation) => new URL(r.current).port;

describe('UrlRotation (AMQP_URL lists)', () => {
  it('tries every node once before a round counts as failed, and wraps around', () => {
    const r = new UrlRotation(three, 1);
    const seen: string[] = [];
    const rounds: number[] = [];
    for (let i = 0; i < 7; i++) {
      seen.push(port(r));
      rounds.push(r.failed());
    }
    expect(seen).toEqual(['2', '3', '1', '2', '3', '1', '2']);
    // No backoff until all three failed; then one more round each three failures.
    expect(rounds).toEqual([0, 0, 1, 0, 0, 2, 0]);
  });

  it('a success starts a new round; a lost connection moves on to the next node without counting as a failure', () => {
    const r = new UrlRotation(three, 0);
    r.failed();
    r.failed();
    expect(port(r)).toBe('3');
    r.succeeded();
    r.lost();
    expect(port(r)).toBe('1');
    expect([r.failed(), r.failed(), r.failed()]).toEqual([0, 0, 1]);
    expect(port(r)).toBe('1');
  });

  it('with one URL, every failure is a whole round (the backoff grows as before) and the URL stays', () => {
    const r = new UrlRotation('amqp://127.0.0.1:5672');
    expect([r.failed(), r.failed(), r.failed()]).toEqual([1, 2, 3]);
    r.lost();
    expect(r.current).toBe('amqp://127.0.0.1:5672');
    expect(r.urls).toEqual(['amqp://127.0.0.1:5672']);
  });

  it('starts at a random node unless told, always one of the list', () => {
    const starts = new Set(Array.from({ length: 200 }, () => port(new UrlRotation(three))));
    expect([...starts].sort()).toEqual(['1', '2', '3']);
  });

  it('refuses a bad list with the item that is wrong', () => {
    expect(() => new UrlRotation('amqp://a:1,,amqp://b:2')).toThrow(/no empty item/);
    expect(() => new UrlRotation('amqp://a:1,http://b:2')).toThrow(/item 2 of 2.*amqp: or amqps:/);
  });
});

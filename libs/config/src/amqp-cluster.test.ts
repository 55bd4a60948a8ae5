import { describe, expect, it } from 'vitest';
import { ConfigError, QUORUM_DELIVERY_LIMIT, amqpUrlList, describeConfig, loadConfig, maskUrl } from './config.ts';

describe('AMQP_URL as a list of cluster nodes', () => {
  it('accepts one URL or a comma-separated list (spaces and a trailing slash trimmed), order kept', () => {
    expect(loadConfig({ AMQP_URL: 'amqp://u:p@127.0.0.1:5672/' }).amqpUrl).toBe('amqp://u:p@127.0.0.1:5672');
    const list = loadConfig({ AMQP_URL: ' amqp://u:p@127.0.0.1:26100 , amqps://u:p@127.0.0.1:26110/,amqp://127.0.0.1:26120' }).amqpUrl;
    expect(list).toBe('amqp://u:p@127.0.0.1:26100,amqps://u:p@127.0.0.1:26110,amqp://127.0.0.1:26120');
    expect(amqpUrlList(list)).toEqual(['amqp://u:p@127.0.0.1:26100', 'amqps://u:p@127.0.0.1:26110', 'amqp://127.0.0.1:26120']);
  });

  it('refuses an empty item, a bad or non-AMQP item (naming which) and a node listed twice, with passwords masked', () => {
    const cases: [string, RegExp][] = [
      ['amqp://a:1,,amqp://b:2', /AMQP_URL must be one URL or a comma-separated list of URLs, with no empty item/],
      ['amqp://a:1,', /no empty item/],
      ['amqp://a:1,http://b:2', /AMQP_URL \(item 2 of 2\) must use amqp: or amqps:/],
      ['amqp://u:secret@a:1,not a url', /AMQP_URL \(item 2 of 2\) must be a URL/],
      ['amqp://u:secret@a:1,amqp://u:secret@a:1/', /AMQP_URL lists the same broker twice: 'amqp:\/\/u:\*\*\*@a:1'/],
    ];
    for (const [value, message] of cases) {
      expect(() => loadConfig({ AMQP_URL: value }), value).toThrow(ConfigError);
      expect(() => loadConfig({ AMQP_URL: value }), value).toThrow(message);
      try {
        loadConfig({ AMQP_URL: value });
      } catch (err) {
        expect((err as Error).message).not.toContain('secret');
      }
    }
  });

  it('masks every password of a list in logs', () => {
    expect(maskUrl('amqp://u:s1@a:1,amqp://u:s2@b:2')).toBe('amqp://u:***@a:1,amqp://u:***@b:2');
    const described = describeConfig(loadConfig({ AMQP_URL: 'amqp://u:s1@a:1,amqp://u:s2@b:2' }));
    expect(described.amqpUrl).toBe('amqp://u:***@a:1,amqp://u:***@b:2');
  });
});

describe('QUEUE_TYPE', () => {
  it('is classic unless set to quorum', () => {
    expect(loadConfig({}).queueType).toBe('classic');
    expect(loadConfig({ QUEUE_TYPE: 'quorum' }).queueType).toBe('quorum');
    expect(loadConfig({ QUEUE_TYPE: 'Classic' }).queueType).toBe('classic');
    expect(() => loadConfig({ QUEUE_TYPE: 'stream' })).toThrow(/QUEUE_TYPE must be one of classic, quorum, got 'stream'/);
  });

  it('with quorum, keeps DELIVERY_LIMIT at or below the quorum queues\' x-delivery-limit', () => {
    expect(loadConfig({ QUEUE_TYPE: 'quorum', DELIVERY_LIMIT: String(QUORUM_DELIVERY_LIMIT) }).deliveryLimit).toBe(QUORUM_DELIVERY_LIMIT);
    expect(() => loadConfig({ QUEUE_TYPE: 'quorum', DELIVERY_LIMIT: String(QUORUM_DELIVERY_LIMIT + 1) })).toThrow(/DELIVERY_LIMIT \(51\) must be at most 50 with QUEUE_TYPE=quorum/);
    expect(loadConfig({ DELIVERY_LIMIT: String(QUORUM_DELIVERY_LIMIT + 1) }).deliveryLimit).toBe(QUORUM_DELIVERY_LIMIT + 1);
  });
});

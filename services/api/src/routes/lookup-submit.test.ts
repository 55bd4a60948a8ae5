import { describe, expect, it } from 'vitest';
import { MessageValidators, commandMessageId } from '@lookup/contracts';
import { harness, post, UUID_RE } from '../testing/app-harness.ts';

describe('POST /api/lookup accepted', () => {
  it('answers 202 with jobId, statusUrl, message, Location and X-Job-Id, stores and publishes the job', async () => {
    const h = await harness();
    const res = await post(h.app, { target: '8.8.8.8' });
    expect(res.statusCode).toBe(202);
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(['jobId', 'message', 'statusUrl']);
    expect(body.jobId).toMatch(UUID_RE);
    expect(body.statusUrl).toBe(`/api/lookup/${body.jobId}`);
    expect(typeof body.message).toBe('string');
    expect(res.headers.location).toBe(body.statusUrl);
    expect(res.headers['x-job-id']).toBe(body.jobId);
    expect(res.headers['content-type']).toMatch(/^application\/json/);

    const job = h.jobs.jobs.get(body.jobId)!;
    expect(job).toMatchObject({ jobId: body.jobId, target: '8.8.8.8', targetType: 'IPAddress', services: [0, 1, 2, 3, 4] });
    expect(Number.isNaN(Date.parse(job.createdAt))).toBe(false);

    // No tenant: the API dispatches the job itself, one command per service (submit-lookup.test.ts: a tenant's job).
    expect(h.dispatched).toEqual([{ jobId: body.jobId, target: '8.8.8.8', targetType: 'IPAddress', services: [0, 1, 2, 3, 4], via: 'commands' }]);
    expect(h.published).toEqual([]);
    for (const msg of h.commands) {
      expect(MessageValidators.lookupCommand.errors(msg)).toEqual([]);
      expect(msg).toMatchObject({ jobId: body.jobId, correlationId: body.jobId, schemaVersion: 1, target: '8.8.8.8', targetType: 'IPAddress', attempt: 1 });
      expect(msg.messageId).toBe(commandMessageId(body.jobId, msg.serviceType, 1));
    }
    expect(job.dispatchedAt).toBe(job.createdAt);
  });

  it('logs the acceptance with the job id on the line', async () => {
    const h = await harness();
    const res = await post(h.app, { target: 'example.com' });
    const line = h.logs.find((l) => l.msg === 'job accepted');
    expect(line).toMatchObject({ jobId: res.json().jobId, target: 'example.com', targetType: 'Domain' });
  });

  it('takes services by name case-insensitively, by number and as numeric strings, in request order', async () => {
    const h = await harness();
    const res = await post(h.app, { target: 'example.com', services: ['rdap', 'GEOIP', 1, '3'] });
    expect(res.statusCode).toBe(202);
    expect(h.jobs.jobs.get(res.json().jobId)!.services).toEqual([2, 0, 1, 3]);
    expect(h.dispatched[0]!.services).toEqual([2, 0, 1, 3]);
  });

  it('runs every catalogue service when services is omitted', async () => {
    const h = await harness();
    const res = await post(h.app, { target: 'example.com' });
    expect(h.jobs.jobs.get(res.json().jobId)!.services).toEqual([0, 1, 2, 3, 4]);
  });

  it('stores the trimmed target', async () => {
    const h = await harness();
    const res = await post(h.app, { target: '  8.8.4.4 \n' });
    expect(res.statusCode).toBe(202);
    expect(h.jobs.jobs.get(res.json().jobId)!.target).toBe('8.8.4.4');
    expect(h.dispatched[0]!.target).toBe('8.8.4.4');
  });

  it('converts an IDN to punycode and lower-cases domains', async () => {
    const h = await harness();
    const res = await post(h.app, { target: 'Bücher.DE.' });
    expect(res.statusCode).toBe(202);
    expect(h.jobs.jobs.get(res.json().jobId)).toMatchObject({ target: 'xn--bcher-kva.de', targetType: 'Domain' });
  });

  it('accepts public IPv6 targets', async () => {
    const h = await harness();
    const res = await post(h.app, { target: '2606:4700:4700::1111', services: ['Ping'] });
    expect(res.statusCode).toBe(202);
    expect(h.jobs.jobs.get(res.json().jobId)).toMatchObject({ targetType: 'IPAddress', services: [1] });
  });

  it('accepts application/json with a charset', async () => {
    const h = await harness();
    const res = await post(h.app, JSON.stringify({ target: 'example.org' }), { headers: { 'content-type': 'application/json; charset=utf-8' } });
    expect(res.statusCode).toBe(202);
  });
});

describe('POST /api/lookup refused (400 with a JSON body saying what is wrong)', () => {
  const invalidTargets: [string, unknown, RegExp][] = [
    ['empty target', '', /empty/],
    ['whitespace target', '   \t ', /empty/],
    ['octet above 255', '256.1.1.1', /IPv4/],
    ['three octets', '1.2.3', /IPv4/],
    ['leading zero', '01.2.3.4', /IPv4/],
    ['five octets', '1.2.3.4.5', /IPv4/],
    ['hex octet', '0x7f.0.0.1', /IPv4/],
    ['URL', 'http://example.com/', /URL/],
    ['URL without scheme', 'example.com/path', /URL/],
    ['single label', 'localhost', /two labels/],
    ['label over 63', `${'a'.repeat(64)}.com`, /63/],
    ['name over 253', `${Array.from({ length: 4 }, () => 'a'.repeat(63)).join('.')}.com`, /253/],
    ['numeric TLD', 'example.123', /top-level/],
    ['underscore', 'under_score.com', /letters, digits/],
    ['bad IPv6', '2001:::1', /IPv6/],
  ];
  it.each(invalidTargets)('%s', async (_name, target, message) => {
    const h = await harness();
    const res = await post(h.app, { target });
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body.error).toBe('Invalid target');
    expect(body.message).toMatch(message);
    expect(h.jobs.jobs.size).toBe(0);
    expect(h.dispatched).toHaveLength(0);
  });

  it('missing target', async () => {
    const h = await harness();
    const res = await post(h.app, { services: ['GeoIP'] });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'Invalid request body', details: [expect.stringMatching(/required property 'target'/)] });
  });

  it('wrong types are refused, not coerced', async () => {
    const h = await harness();
    for (const payload of [{ target: 8 }, { target: null }, { target: ['8.8.8.8'] }, { target: '8.8.8.8', services: 'GeoIP' }, { target: '8.8.8.8', services: [true] }, { target: '8.8.8.8', services: [1.5] }]) {
      const res = await post(h.app, payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      const body = res.json();
      expect(body.error).toBe('Invalid request body');
      expect(body.details.length).toBeGreaterThan(0);
      expect(body.details.every((d: unknown) => typeof d === 'string' && d.startsWith('body'))).toBe(true);
    }
    expect(h.jobs.jobs.size).toBe(0);
  });

  it('lists every schema problem in details', async () => {
    const h = await harness();
    const res = await post(h.app, { target: 5, services: [null], colour: 'blue' });
    expect(res.statusCode).toBe(400);
    const { details } = res.json();
    expect(details).toEqual(
      expect.arrayContaining([
        'body/target must be string',
        "body must NOT have additional properties ('colour')",
        expect.stringMatching(/^body\/services\/0 must be string or must be integer$/),
      ]),
    );
  });

  it('a body that is not an object', async () => {
    const h = await harness();
    for (const payload of ['[]', '"8.8.8.8"', '42', 'null']) {
      const res = await post(h.app, payload, { headers: { 'content-type': 'application/json' } });
      expect(res.statusCode, payload).toBe(400);
      expect(res.json().error).toBe('Invalid request body');
    }
  });

  it('extra properties', async () => {
    const h = await harness();
    const res = await post(h.app, { target: '8.8.8.8', urgency: 'high' });
    expect(res.statusCode).toBe(400);
    expect(res.json().details).toEqual(["body must NOT have additional properties ('urgency')"]);
  });

  it('duplicate services, naming them', async () => {
    const h = await harness();
    const res = await post(h.app, { target: '8.8.8.8', services: ['GeoIP', 'geoip'] });
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body.error).toBe('Invalid services');
    expect(body.details).toEqual([expect.stringMatching(/services\[1\]: duplicate service "geoip" \(GeoIP/)]);
    const numeric = await post(h.app, { target: '8.8.8.8', services: [1, 'Ping'] });
    expect(numeric.statusCode).toBe(400);
    expect(numeric.json().message).toMatch(/duplicate service "Ping"/);
  });

  it('unknown services, naming them', async () => {
    const h = await harness();
    const res = await post(h.app, { target: '8.8.8.8', services: ['GeoIP', 'Traceroute', 'whois'] });
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body.error).toBe('Invalid services');
    expect(body.details).toHaveLength(2);
    expect(body.details[0]).toMatch(/services\[1\]: unknown service "Traceroute"/);
    expect(body.details[1]).toMatch(/services\[2\]: unknown service "whois"/);
    expect(body.message).toMatch(/GeoIP, Ping, RDAP, ReverseDNS/);
  });

  it('unknown service numbers', async () => {
    const h = await harness();
    const res = await post(h.app, { target: '8.8.8.8', services: [5] });
    expect(res.statusCode).toBe(400);
    expect(res.json().details).toEqual([expect.stringMatching(/^body\/services\/0 .*<= 4/)]);
  });

  it('an empty services array', async () => {
    const h = await harness();
    const res = await post(h.app, { target: '8.8.8.8', services: [] });
    expect(res.statusCode).toBe(400);
    expect(res.json().details).toEqual([expect.stringMatching(/body\/services must NOT have fewer than 1 items/)]);
  });

  it('reports a bad target and bad services together', async () => {
    const h = await harness();
    const res = await post(h.app, { target: 'nope', services: ['Nope'] });
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body.error).toBe('Invalid request');
    expect(body.details).toHaveLength(2);
  });

  it('malformed JSON', async () => {
    const h = await harness();
    const res = await post(h.app, '{"target": "8.8.8.8",', { headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ error: 'Invalid JSON', message: 'The request body is not valid JSON', code: 'INVALID_JSON' });
  });

  it('prototype poisoning is malformed JSON, not a crash', async () => {
    const h = await harness();
    const res = await post(h.app, '{"target":"8.8.8.8","__proto__":{"x":1}}', { headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toBe('Invalid JSON');
  });

  it('an empty body with a JSON content type', async () => {
    const h = await harness();
    const res = await post(h.app, '', { headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'Invalid JSON', message: expect.stringMatching(/empty/) });
  });

  it('no body at all', async () => {
    const h = await harness();
    const res = await h.app.inject({ method: 'POST', url: '/api/lookup' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'Invalid request body', details: ['body must be object'] });
  });

  it('a wrong content type is 415', async () => {
    const h = await harness();
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x']) {
      const res = await post(h.app, 'target=8.8.8.8', { headers: { 'content-type': type } });
      expect(res.statusCode, type).toBe(415);
      expect(res.json()).toMatchObject({ error: 'Unsupported media type', message: expect.stringMatching(/application\/json/) });
    }
  });

  it('a body without a content type is 415', async () => {
    const h = await harness();
    const res = await h.app.inject({ method: 'POST', url: '/api/lookup', payload: Buffer.from('{"target":"8.8.8.8"}') });
    expect(res.statusCode).toBe(415);
    expect(res.json()).toEqual({ error: 'Unsupported media type', message: 'The request has a body but no Content-Type; send application/json', code: 'UNSUPPORTED_MEDIA_TYPE' });
  });

  it('an oversized body is 413', async () => {
    const h = await harness({ bodyLimitBytes: 1024 });
    const res = await post(h.app, { target: 'example.com', pad: 'x'.repeat(2000) });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toEqual({ error: 'Payload too large', message: 'The request body is larger than 1024 bytes', code: 'PAYLOAD_TOO_LARGE' });
  });

  it('refuses loopback, private, link-local and reserved addresses, naming ALLOW_PRIVATE_TARGETS', async () => {
    const h = await harness({ allowPrivateTargets: false });
    for (const target of ['127.0.0.1', '10.1.2.3', '192.168.1.1', '169.254.169.254', '0.0.0.0', '::1', 'fe80::1%eth0', '::ffff:127.0.0.1', '2001:db8::1', '224.0.0.1']) {
      const res = await post(h.app, { target });
      expect(res.statusCode, target).toBe(400);
      const body = res.json();
      expect(body.error).toBe('Target not allowed');
      expect(body.message).toMatch(/ALLOW_PRIVATE_TARGETS/);
    }
    expect(h.jobs.jobs.size).toBe(0);
  });

  it('accepts private addresses when ALLOW_PRIVATE_TARGETS is set', async () => {
    const h = await harness({ allowPrivateTargets: true });
    const res = await post(h.app, { target: '127.0.0.1' });
    expect(res.statusCode).toBe(202);
    expect(h.jobs.jobs.get(res.json().jobId)!.target).toBe('127.0.0.1');
  });

  it('never answers 500 to hostile input', async () => {
    const h = await harness();
    const payloads = [
      '{"target": "\\u0000"}', '{"target": "\u202e.com"}', '{"target":"a","services":[{}]}', '{"target":"' + 'a.'.repeat(400) + 'com"}',
      '{"target": "%00.com"}', '{"target":"8.8.8.8","services":["__proto__"]}', '{"constructor":{"prototype":{}}}', '\uFEFF{}', '{"target":"😀.com"}',
    ];
    for (const p of payloads) {
      const res = await post(h.app, p, { headers: { 'content-type': 'application/json' } });
      expect(res.statusCode, p).toBeGreaterThanOrEqual(200);
      expect(res.statusCode, p).toBeLessThan(500);
      expect(typeof res.json().error === 'string' || res.statusCode === 202, p).toBe(true);
    }
  });
});

describe('POST /api/lookup when a dependency fails', () => {
  it('publish failure: 503 with Retry-After, and the job is discarded', async () => {
    const h = await harness();
    h.setPublishFails(true);
    const res = await post(h.app, { target: '8.8.8.8' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    const body = res.json();
    expect(body).toMatchObject({ error: 'Service unavailable', message: expect.stringMatching(/broker/), retryAfter: 5 });
    expect(h.jobs.discarded).toHaveLength(1);
    expect(h.jobs.jobs.size).toBe(0);
    expect(res.headers.location).toBeUndefined();
    const line = h.logs.find((l) => typeof l.msg === 'string' && (l.msg as string).includes('discarding'));
    expect(line?.jobId).toBe(h.jobs.discarded[0]);
  });

  it('Redis failure on create: 503, nothing published', async () => {
    const h = await harness();
    h.jobs.failCreate = true;
    const res = await post(h.app, { target: '8.8.8.8' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(res.json().error).toBe('Service unavailable');
    expect(h.dispatched).toHaveLength(0);
  });
});

// ---------------------------------------------------------------------------------------------------------

import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { rawRedis } from './support/redis.ts';
import type { GetMessage } from 'amqplib';
import { RoutingKeys, SCHEMA_VERSION, SERVICE_CATALOGUE, commandMessageId, taskCompletedMessageId, type JobDocument } from '@lookup/contracts';
import { CALLBACK_DELAY_SLUG, declarations, topology } from '@lookup/messaging';
import { createJobStore, keys as storeKeys } from '@lookup/store';
import { startDnsFixture, startRdapFixture } from './fixtures/index.ts';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { startSuite, waitFor, type Suite } from './support/processes.ts';
import { rawAmqp } from './support/amqp.ts';
import { AMQP_URL, REPO_ROOT, fixtureEnv } from './support/env.ts';

// Issue 10, finding 9: messages from whoever can publish to the broker. Every consumer (saga, each lookup
// worker, the delay queues, the dead-letter queue and its readers) must survive them: no crash, each hostile
// message in the dead-letter queue with its reason, and real jobs still complete.
const ns = newNamespace('hostile');
const t = topology(ns);
const KEY = 'hostile-admin-key';
// fixtureEnv: 3 attempts, RETRY_BASE_DELAY_MS 100, the default maximum: the delay queues this suite declares.
// The lookup services' delay queues (commands); the completion callbacks' (`<ns>.delay.callback.*`) carry other messages.
const DELAY_QUEUES = declarations(ns, { maxAttempts: 3, retryDelays: { baseMs: 100, maxMs: 30_000 } }).queues.filter(
  (q) => q.name.startsWith(`${ns}.delay.`) && !q.name.startsWith(`${ns}.delay.${CALLBACK_DELAY_SLUG}.`),
);
let suite: Suite;
let amqp: Awaited<ReturnType<typeof rawAmqp>>;
let redis: Redis;
let rdap: Awaited<ReturnType<typeof startRdapFixture>>;
let dns: Awaited<ReturnType<typeof startDnsFixture>>;

beforeAll(async () => {
  [rdap, dns] = await Promise.all([startRdapFixture({}), startDnsFixture({})]);
  suite = await startSuite({
    namespace: ns,
    services: ['api', 'saga', ...SERVICE_CATALOGUE.map((s) => s.slug)],
    env: fixtureEnv({ rdapUrl: rdap.url, dnsAddress: dns.address }, { ADMIN_API_KEY: KEY, JOB_DEADLINE_MS: '60000', PING_TIMEOUT_MS: '1000' }),
  });
  amqp = await rawAmqp();
  redis = rawRedis();
});

afterAll(async () => {
  await suite?.stop();
  await amqp?.close();
  redis?.disconnect();
  await Promise.all([rdap?.close(), dns?.close()]);
  await cleanupNamespace(ns);
});

const jobs = () => createJobStore({ redis, namespace: ns, ttlSeconds: 600 });
const now = () => new Date().toISOString();
const reasonOf = (m: GetMessage) => String(m.properties.headers?.['x-dead-letter-reason'] ?? m.properties.headers?.['x-first-death-reason'] ?? '');

async function newJob(services = [0]): Promise<string> {
  const jobId = randomUUID();
  await jobs().create({ jobId, target: '127.0.0.1', targetType: 'IPAddress', services, createdAt: now(), deadlineAt: Date.now() + 60_000 });
  return jobId;
}

function taskCompleted(jobId: string, serviceType: number, location: { storage: 'redis'; key: string } | null) {
  return {
    messageId: taskCompletedMessageId(jobId, serviceType), correlationId: jobId, schemaVersion: SCHEMA_VERSION, occurredAt: now(),
    jobId, serviceType, status: 'Succeeded', success: true, errorMessage: null, durationMs: 1, attempts: 1, completedAt: now(), location,
  };
}

function command(jobId: string, serviceType: number, attempt = 2) {
  return { messageId: commandMessageId(jobId, serviceType, attempt), correlationId: jobId, schemaVersion: SCHEMA_VERSION, occurredAt: now(), jobId, target: '127.0.0.1', targetType: 'IPAddress', serviceType, attempt };
}

async function getJob(jobId: string) {
  const res = await fetch(`${suite.apiUrl}/api/lookup/${jobId}`);
  return { status: res.status, body: (await res.json()) as JobDocument };
}

/** Waits for dead letters until `want` of them match; returns those (the rest are taken off the queue too). */
async function deadLetters(want: number, match: (m: GetMessage) => boolean, timeoutMs = 20_000, found: GetMessage[] = []): Promise<GetMessage[]> {
  await waitFor(async () => {
    for (const m of await amqp.drain(t.queues.deadLetter)) if (match(m)) found.push(m);
    return found.length >= want ? true : undefined;
  }, timeoutMs);
  return found;
}

describe('forged task.completed locations', () => {
  it('never puts another key into a job, nor makes its GET fail: a location other than the job\'s own key is dead-lettered', async () => {
    await amqp.drain(t.queues.deadLetter);
    // Keys a forger might name: another job's result, a string, a string that is not JSON, a hash, a list.
    const victim = await newJob([0]);
    await redis.set(storeKeys(ns).result(victim, 0), JSON.stringify({ jobId: victim, serviceType: 0, status: 'Succeeded', success: true, data: { secret: 'victim-data' }, errorMessage: null, durationMs: 1, attempts: 1, completedAt: now() }));
    await redis.set(`${ns}:secret-json`, JSON.stringify({ data: { secret: 'json-key' } }));
    await redis.set(`${ns}:secret-text`, 'not json at all');
    await redis.hset(`${ns}:secret-hash`, 'data', 'hash-key');
    await redis.rpush(`${ns}:secret-list`, 'list-key');
    const forged = [storeKeys(ns).result(victim, 0), `${ns}:secret-json`, `${ns}:secret-text`, `${ns}:secret-hash`, `${ns}:secret-list`, storeKeys(ns).result(randomUUID(), 0)];
    const targets: string[] = [];
    for (const key of forged) {
      const jobId = await newJob([0]);
      targets.push(jobId);
      await amqp.publish(t.exchanges.events, RoutingKeys.taskCompleted, taskCompleted(jobId, 0, { storage: 'redis', key }), { messageId: `forged-${jobId}`, correlationId: jobId });
    }
    const dead = await deadLetters(forged.length, (m) => String(m.properties.messageId).startsWith('forged-'));
    for (const m of dead) expect(reasonOf(m)).toMatch(/location .* is not job .*'s result key for GeoIP/);
    for (const jobId of targets) {
      const { status, body } = await getJob(jobId);
      expect(status).toBe(200);
      expect(JSON.stringify(body)).not.toMatch(/secret|victim-data|json-key|hash-key|list-key/);
      expect(body.results).toEqual([]);
    }

    // The same event with the job's own location is recorded, and the data comes from that key.
    const honest = await newJob([0]);
    await redis.set(storeKeys(ns).result(honest, 0), JSON.stringify({ jobId: honest, serviceType: 0, status: 'Succeeded', success: true, data: { mine: true }, errorMessage: null, durationMs: 1, attempts: 1, completedAt: now() }));
    await amqp.publish(t.exchanges.events, RoutingKeys.taskCompleted, taskCompleted(honest, 0, { storage: 'redis', key: storeKeys(ns).result(honest, 0) }), { messageId: `honest-${honest}` });
    const done = await waitFor(async () => {
      const { body } = await getJob(honest);
      return body.status === 'Completed' ? body : undefined;
    });
    expect(done.results[0]?.data).toEqual({ mine: true });
  });

  it('reads only the job\'s own result key, even for an outcome recorded with a foreign location before the check existed', async () => {
    const jobId = await newJob([0, 1]);
    await redis.set(`${ns}:elsewhere`, JSON.stringify({ jobId, serviceType: 0, data: { secret: 'elsewhere' } }));
    await redis.set(`${ns}:broken`, '{{{ not json');
    const outcome = (key: string) => JSON.stringify({ status: 'Succeeded', success: true, errorMessage: null, completedAt: now(), durationMs: 1, attempts: 1, location: { storage: 'redis', key } });
    await redis.hset(storeKeys(ns).job(jobId), 'o:0', outcome(`${ns}:elsewhere`), 'o:1', outcome(`${ns}:broken`));
    const { status, body } = await getJob(jobId);
    expect(status).toBe(200);
    expect(body.results.map((r) => r.data)).toEqual([null, null]);
    expect(JSON.stringify(body)).not.toMatch(/secret/);
  });
});

describe('dead letters keep', () => {
  it('a dead letter does not inherit the original per-message TTL (expiration)', async () => {
    await amqp.drain(t.queues.deadLetter);
    await amqp.publish(t.exchanges.events, RoutingKeys.jobSubmitted, { not: 'a job' }, { messageId: 'ttl-poison', expiration: '1500' });
    await amqp.publish(t.exchanges.commands, RoutingKeys.command('geoip'), '{"x":', { messageId: 'ttl-poison-cmd', expiration: '1500' });
    // Taken without ack and returned, so the check is on the copy as it sits in the queue.
    const seen = await waitFor(async () => {
      const { messageCount } = await amqp.channel.checkQueue(t.queues.deadLetter);
      return messageCount >= 2 ? messageCount : undefined;
    });
    expect(seen).toBe(2);
    const copies = await amqp.drain(t.queues.deadLetter, 2);
    for (const m of copies) {
      expect(m.properties.expiration).toBeUndefined();
      expect(m.properties.headers?.['x-original-expiration']).toBe('1500');
      expect(reasonOf(m)).toMatch(/schema validation failed|invalid JSON/);
    }
  });

  it('RabbitMQ\'s own dead-lettering (a message expiring in a work queue) drops the expiration too, and the listing shows why', async () => {
    // A namespace with the topology but no consumers: the message expires in the work queue and RabbitMQ
    // dead-letters it (x-dead-letter-exchange of every work queue).
    const other = newNamespace('hostile-dlx');
    const o = topology(other);
    const conn = amqp.channel;
    try {
      const d = declarations(other, { maxAttempts: 2, retryDelays: { baseMs: 100, maxMs: 1000 } });
      for (const e of d.exchanges) await conn.assertExchange(e.name, e.type, { durable: true });
      for (const q of d.queues) {
        await conn.assertQueue(q.name, { durable: true, arguments: q.arguments });
        for (const b of q.bindings) await conn.bindQueue(q.name, b.exchange, b.routingKey);
      }
      await amqp.publish(o.exchanges.commands, RoutingKeys.command('ping'), { any: 1 }, { messageId: 'expired-in-work-queue', expiration: '20' });
      const [m] = await waitFor(async () => {
        const got = await amqp.drain(o.queues.deadLetter);
        return got.length > 0 ? got : undefined;
      });
      expect(m!.properties.expiration).toBeUndefined();
      expect(m!.properties.headers?.['x-first-death-reason']).toBe('expired');
      expect(m!.properties.headers?.['x-first-death-queue']).toBe(o.queues.lookup('ping'));
    } finally {
      await cleanupNamespace(other);
    }
  });
});

describe('delay (retry) queues', () => {
  it('a message with no TTL, or a huge one, in a delay queue neither blocks the retries behind it nor runs: it is dead-lettered', async () => {
    await amqp.drain(t.queues.deadLetter);
    const jobIds: string[] = [];
    for (const q of DELAY_QUEUES) {
      const routingKey = q.bindings[0]!.routingKey;
      const slug = q.bindings[0]!.routingKey.split('.')[0]!;
      const service = SERVICE_CATALOGUE.find((s) => s.slug === slug)!.value;
      // At the head: a valid-looking command without a TTL, and one with a TTL of a day.
      await amqp.publish(t.exchanges.retry, routingKey, command(randomUUID(), service), { messageId: `no-ttl-${q.name}` });
      await amqp.publish(t.exchanges.retry, routingKey, command(randomUUID(), service), { messageId: `huge-ttl-${q.name}`, expiration: String(86_400_000) });
      // Behind them: a real retry of a real job, as a worker schedules it (Broker.publishDelayed: its TTL is the bucket).
      const jobId = await newJob([service]);
      jobIds.push(jobId);
      const bucket = String(q.arguments?.['x-message-ttl']);
      await amqp.publish(t.exchanges.retry, routingKey, command(jobId, service), { messageId: `${jobId}:${service}:2`, correlationId: jobId, expiration: bucket });
    }
    for (const jobId of jobIds) {
      const doc = await waitFor(async () => {
        const { body } = await getJob(jobId);
        return body.status === 'Completed' ? body : undefined;
      }, 30_000);
      expect(doc.results[0]?.attempts).toBe(2);
    }
    const dead = await deadLetters(DELAY_QUEUES.length * 2, (m) => /^(no|huge)-ttl-/.test(String(m.properties.messageId)));
    for (const m of dead) {
      const id = String(m.properties.messageId);
      expect(reasonOf(m)).toMatch(id.startsWith('no-ttl') ? /not a scheduled retry: .*without a per-message TTL/ : /not a scheduled retry: its per-message TTL \(86400000\) exceeds/);
    }
    for (const q of DELAY_QUEUES) expect((await amqp.channel.checkQueue(q.name)).messageCount).toBe(0);
  });
});

describe('the dead-letter listing', () => {
  it('never fails because of one message: deep, huge, binary and non-JSON bodies are shown as a safe preview', async () => {
    await amqp.drain(t.queues.deadLetter);
    // Deep enough to overflow JSON.stringify, small enough (60 KB) to be shown if it were safe.
    const deep = '['.repeat(30_000) + ']'.repeat(30_000);
    const bodies: [string, Buffer][] = [
      ['deep', Buffer.from(deep)],
      ['deep-object', Buffer.from(`{"a":${'{"a":'.repeat(50_000)}1${'}'.repeat(50_001)}`)],
      ['huge', Buffer.from(JSON.stringify({ s: 'x'.repeat(2_000_000) }))],
      ['binary', Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x80])],
      ['text', Buffer.from('<xml>nope</xml>')],
      ['ok', Buffer.from(JSON.stringify({ fine: true }))],
    ];
    for (const [id, body] of bodies) {
      await amqp.sendToQueue(t.queues.deadLetter, body, { messageId: id, headers: { 'x-dead-letter-reason': { nested: ['table'] }, 'x-original-queue': 'q'.repeat(5000) } });
    }
    const res = await fetch(`${suite.apiUrl}/api/admin/dead-letters?limit=100`, { headers: { 'x-admin-key': KEY } });
    expect(res.status).toBe(200);
    const listed = (await res.json()) as { count: number; messages: { messageId: string; body: unknown; bodyFormat: string; bodyTruncated: boolean; bodyNote: string | null; size: number; originalQueue: string }[] };
    expect(listed.messages.map((m) => m.messageId).sort()).toEqual(bodies.map(([id]) => id).sort());
    const byId = new Map(listed.messages.map((m) => [m.messageId, m]));
    expect(byId.get('deep')).toMatchObject({ bodyFormat: 'text', bodyTruncated: true, size: 60_000 });
    expect(byId.get('deep')!.bodyNote).toMatch(/nested deeper/);
    expect(byId.get('deep-object')).toMatchObject({ bodyFormat: 'text' });
    expect(byId.get('huge')).toMatchObject({ bodyFormat: 'text', bodyTruncated: true });
    expect(byId.get('binary')).toMatchObject({ bodyFormat: 'base64', body: Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x80]).toString('base64') });
    expect(byId.get('text')).toMatchObject({ bodyFormat: 'text', body: '<xml>nope</xml>', bodyNote: 'not JSON: its text' });
    expect(byId.get('ok')).toMatchObject({ bodyFormat: 'json', body: { fine: true } });
    for (const m of listed.messages) expect(m.originalQueue.length).toBeLessThan(2100);

    // The CLI lists the same queue.
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/dlq.ts', 'list', '--limit', '100'], {
      cwd: REPO_ROOT, env: { ...process.env, AMQP_URL, NAMESPACE: ns, RETRY_BASE_DELAY_MS: '100' }, maxBuffer: 64 * 1024 * 1024,
    });
    const cli = JSON.parse(stdout) as { messages: { messageId: string; bodyFormat: string }[] };
    expect(cli.messages.map((m) => m.messageId).sort()).toEqual(bodies.map(([id]) => id).sort());
    await amqp.drain(t.queues.deadLetter);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Seeded fuzz of every consumer.

const SEED = 0x10_09;
const PER_CONSUMER = 60;

interface Hostile {
  kind: string;
  exchange: string;
  routingKey: string;
  content: Buffer;
  props: { contentType?: string; expiration?: string };
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const kindOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
const nest = (depth: number) => Buffer.from(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);

/**
 * Hostile variants of a valid message: every one of them can never be handled (each breaks the schema, the
 * encoding, a limit or the location rule), so each must end in the dead-letter queue.
 */
function hostileArb(valid: () => Record<string, unknown>, extra: fc.Arbitrary<Buffer>[]): fc.Arbitrary<{ kind: string; content: Buffer; contentType?: string }> {
  const keys = Object.keys(valid());
  const required = keys.filter((k) => k !== 'location');
  const weird = fc.oneof(fc.constant(null), fc.integer(), fc.double(), fc.boolean(), fc.constant([]), fc.constant({}), fc.string({ maxLength: 10 }).map((s) => [s]), fc.constant('x'.repeat(5000)));
  return fc.oneof(
    fc
      .record({ key: fc.constantFrom(...required), value: weird })
      // A value of another JSON type than the field's (or a string far over every limit): never valid.
      .filter(({ key, value }) => kindOf(value) !== kindOf(valid()[key]) || (typeof value === 'string' && value.length >= 5000))
      .map(({ key, value }) => ({ kind: 'wrong type', content: json({ ...valid(), [key]: value }) })),
    fc.constantFrom(...required).map((key) => {
      const v = valid();
      delete v[key];
      return { kind: 'missing field', content: json(v) };
    }),
    fc.constantFrom(...required).map((key) => {
      // A prototype-pollution payload in place of a required field: JSON.parse makes "__proto__" an own key.
      const v = valid();
      const wanted = v[key];
      delete v[key];
      const text = JSON.stringify(v).replace(/^\{/, `{"__proto__":{"${key}":${JSON.stringify(wanted)},"polluted":true},"constructor":{"prototype":{"polluted":true}},`);
      return { kind: 'prototype pollution', content: Buffer.from(text) };
    }),
    fc.constantFrom(0, 2, 99, -1, '1', null).map((schemaVersion) => ({ kind: 'wrong schemaVersion', content: json({ ...valid(), schemaVersion }) })),
    ...('serviceType' in valid() || 'services' in valid()
      ? [fc.constantFrom(7, 99, -1, 1.5).map((serviceType) => ({ kind: 'unknown service', content: json({ ...valid(), ...('services' in valid() ? { services: [serviceType] } : { serviceType }) }) }))]
      : []),
    fc.integer({ min: 32, max: 100_000 }).map((depth) => ({ kind: 'deep nesting', content: Buffer.concat([json(valid()).subarray(0, -1), Buffer.from(',"extra":'), nest(depth), Buffer.from('}')]) })),
    fc.integer({ min: 300 * 1024, max: 600 * 1024 }).map((n) => ({ kind: 'huge', content: json({ ...valid(), messageId: 'x'.repeat(n) }) })),
    fc.string({ maxLength: 40 }).map((s) => ({ kind: 'not JSON', content: Buffer.from(`<${s}>`), contentType: 'text/xml' })),
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((bytes) => ({ kind: 'invalid UTF-8', content: Buffer.concat([Buffer.from('{"messageId":"'), Buffer.from([0xff, 0xc3]), Buffer.from(bytes), Buffer.from('"}')]) })),
    ...extra.map((arb) => arb.map((content) => ({ kind: 'forged', content }))),
  );
}

function hostileMessages(): Hostile[] {
  const out: Hostile[] = [];
  const uuid = () => randomUUID();
  const submitted = () => ({ messageId: 'm', correlationId: uuid(), schemaVersion: SCHEMA_VERSION, occurredAt: now(), jobId: uuid(), target: '127.0.0.1', targetType: 'IPAddress', services: [0, 1] });
  const completed = () => {
    const jobId = uuid();
    return taskCompleted(jobId, 0, { storage: 'redis', key: storeKeys(ns).result(jobId, 0) }) as unknown as Record<string, unknown>;
  };
  const forgedLocation = fc.constantFrom(`${ns}:secret`, storeKeys(ns).job(uuid()), storeKeys(ns).result(uuid(), 1), 'x', `${ns}:result:${uuid()}:0:`).map((key) => {
    const jobId = uuid();
    return json(taskCompleted(jobId, 0, { storage: 'redis', key }));
  });
  let seed = SEED;
  const sample = <T>(arb: fc.Arbitrary<T>, n: number) => fc.sample(arb, { seed: seed++, numRuns: n });
  for (const m of sample(hostileArb(submitted, []), PER_CONSUMER)) {
    out.push({ kind: `saga/job.submitted: ${m.kind}`, exchange: t.exchanges.events, routingKey: RoutingKeys.jobSubmitted, content: m.content, props: { contentType: m.contentType } });
  }
  for (const m of sample(hostileArb(completed, [forgedLocation]), PER_CONSUMER)) {
    out.push({ kind: `saga/task.completed: ${m.kind}`, exchange: t.exchanges.events, routingKey: RoutingKeys.taskCompleted, content: m.content, props: { contentType: m.contentType } });
  }
  for (const s of SERVICE_CATALOGUE) {
    const cmd = () => command(uuid(), s.value, 1) as unknown as Record<string, unknown>;
    for (const m of sample(hostileArb(cmd, []), PER_CONSUMER)) {
      out.push({ kind: `${s.slug}: ${m.kind}`, exchange: t.exchanges.commands, routingKey: RoutingKeys.command(s.slug), content: m.content, props: { contentType: m.contentType } });
    }
  }
  // The delay queues: valid-looking commands without a TTL or with one over the bucket, and malformed ones.
  for (const q of DELAY_QUEUES) {
    const slug = q.bindings[0]!.routingKey.split('.')[0]!;
    const service = SERVICE_CATALOGUE.find((s) => s.slug === slug)!.value;
    const bucket = Number(q.name.split('.').at(-1)!.replace('ms', ''));
    // The high and low priorities' delay queues (`<slug>.high.delay...`) take fewer variants: the same consumer, and the
    // whole set stays within one page (1000) of the dead-letter listing read below.
    const priority = /^[a-z0-9-]+\.(high|low)\./.test(q.bindings[0]!.routingKey);
    const variants = sample(fc.oneof(fc.constant(undefined), fc.integer({ min: bucket + 1, max: 2_000_000_000 }).map(String)), priority ? 1 : 3);
    for (const expiration of variants) {
      out.push({ kind: `delay ${slug}: ${expiration === undefined ? 'no TTL' : 'TTL over its bucket'}`, exchange: t.exchanges.retry, routingKey: q.bindings[0]!.routingKey, content: json(command(uuid(), service)), props: { expiration } });
    }
    out.push({ kind: `delay ${slug}: malformed`, exchange: t.exchanges.retry, routingKey: q.bindings[0]!.routingKey, content: Buffer.from('{"attempt":'), props: { expiration: '5' } });
  }
  return out;
}

describe('seeded fuzz of every consumer', () => {
  it('dead-letters every hostile message with its reason, crashes nothing, and real jobs still complete', async () => {
    await amqp.drain(t.queues.deadLetter);
    const messages = hostileMessages();
    const kinds = new Map<string, number>();
    for (const m of messages) kinds.set(m.kind.replace(/^[^:]*: /, ''), (kinds.get(m.kind.replace(/^[^:]*: /, '')) ?? 0) + 1);
    for (const [i, m] of messages.entries()) {
      amqp.channel.publish(m.exchange, m.routingKey, m.content, { persistent: true, messageId: `fuzz-${i}`, contentType: m.props.contentType ?? 'application/json', expiration: m.props.expiration });
    }
    await amqp.channel.waitForConfirms();
    // Collected into `dead` even on a timeout, so a failure names the messages that never arrived.
    const dead: GetMessage[] = [];
    await deadLetters(messages.length, (m) => String(m.properties.messageId).startsWith('fuzz-'), 40_000, dead).catch(() => undefined);
    const missing = messages.flatMap((m, i) => (dead.some((d) => d.properties.messageId === `fuzz-${i}`) ? [] : [`${m.kind}: ${m.content.subarray(0, 300).toString()}`]));
    expect(missing).toEqual([]);
    for (const d of dead) expect(reasonOf(d), String(d.properties.messageId)).not.toBe('');
    // The listing reads every one of them.
    for (const d of dead) await amqp.sendToQueue(t.queues.deadLetter, d.content, d.properties);
    const listing = await fetch(`${suite.apiUrl}/api/admin/dead-letters?limit=1000`, { headers: { 'x-admin-key': KEY } });
    expect(listing.status).toBe(200);
    expect(((await listing.json()) as { messages: unknown[] }).messages.length).toBe(dead.length);
    await amqp.drain(t.queues.deadLetter);

    expect(Object.prototype).not.toHaveProperty('polluted');
    for (const p of suite.processes) expect(p.child.exitCode, `${p.name} exited`).toBeNull();
    // Real jobs afterwards, every service.
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${suite.apiUrl}/api/lookup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ target: `127.0.0.${i + 1}` }) });
      expect(res.status).toBe(202);
      ids.push(((await res.json()) as { jobId: string }).jobId);
    }
    for (const id of ids) {
      const doc = await waitFor(async () => {
        const { body } = await getJob(id);
        return body.status === 'Completed' ? body : undefined;
      }, 30_000);
      expect(doc.results).toHaveLength(SERVICE_CATALOGUE.length);
    }
    console.log(`[hostile fuzz] seed ${SEED}: ${messages.length} hostile messages, all dead-lettered with a reason; ${JSON.stringify(Object.fromEntries(kinds))}`);
  });
});

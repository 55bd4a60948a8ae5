import http from 'node:http';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyCallbackSignature, type CallbackStatus } from '@lookup/contracts';
import { topology } from '@lookup/messaging';
import { startDnsFixture, startRdapFixture } from './fixtures/index.ts';
import { AMQP_URL } from './support/env.ts';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { startSuite, waitFor, type Suite } from './support/processes.ts';

// Completion callbacks end to end: API, saga (the dispatcher) and the GeoIP and RDAP workers against the real broker
// and Redis, a loopback receiver (ALLOW_PRIVATE_TARGETS=true here; the refusal without it is tested at the API).
const SECRET = 'callbacks-test-secret-0123456789';
const ns = newNamespace('callbacks');
let suite: Suite;
let rdap: Awaited<ReturnType<typeof startRdapFixture>>;

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}
const received: Received[] = [];
/** Answers per path: `/ok/...` 200; `/flaky/...` 500 the first time, then 200; `/down/...` always 503. */
const seen = new Map<string, number>();
const receiver = http.createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (c: string) => (body += c));
  req.on('end', () => {
    const path = req.url ?? '/';
    received.push({ path, headers: req.headers, body });
    const n = (seen.get(path) ?? 0) + 1;
    seen.set(path, n);
    res.statusCode = path.startsWith('/down/') ? 503 : path.startsWith('/flaky/') && n === 1 ? 500 : 200;
    res.end();
  });
});
let receiverUrl = '';

beforeAll(async () => {
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
  rdap = await startRdapFixture({ delayMs: 60_000 });
  suite = await startSuite({
    namespace: ns,
    services: ['api', 'saga', 'geoip', 'rdap'],
    env: {
      ALLOW_PRIVATE_TARGETS: 'true',
      RDAP_BASE_URL: rdap.url,
      LOOKUP_TIMEOUT_MS: '120000',
      CALLBACK_SECRET: SECRET,
      CALLBACK_MAX_ATTEMPTS: '3',
      RETRY_BASE_DELAY_MS: '50',
      RETRY_MAX_DELAY_MS: '200',
      // An RDAP lookup (the fixture answers after 60 s) outlives its job: the deadline sweep finishes the job.
      JOB_DEADLINE_MS: '8000',
      DEADLINE_SWEEP_MS: '200',
      // The tests poll the API while they wait (the timed-out job for its whole deadline).
      RATE_LIMIT_API_PER_MIN: '0',
      RATE_LIMIT_GLOBAL_PER_MIN: '0',
    },
  });
});

afterAll(async () => {
  await suite?.stop();
  await rdap?.close();
  receiver.closeAllConnections();
  await new Promise((r) => receiver.close(r));
  await cleanupNamespace(ns);
});

async function submit(body: unknown): Promise<string> {
  const res = await fetch(`${suite.apiUrl}/api/lookup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status, await res.clone().text()).toBe(202);
  return ((await res.json()) as { jobId: string }).jobId;
}

const callbacksOf = async (jobId: string) => (await (await fetch(`${suite.apiUrl}/api/lookup/${jobId}/callbacks`)).json()) as CallbackStatus;
const waitState = (jobId: string, state: CallbackStatus['state']) =>
  waitFor(async () => {
    const s = await callbacksOf(jobId);
    return s.state === state ? s : undefined;
  }, 30_000);
const deliveriesTo = (path: string) => received.filter((r) => r.path === path);

describe('completion callbacks', () => {
  it('POSTs the signed job document once the job completes, with a stable delivery id', async () => {
    const path = '/ok/1';
    const jobId = await submit({ target: '127.0.0.2', services: ['GeoIP'], callback: { url: `${receiverUrl}${path}` } });
    const status = await waitState(jobId, 'delivered');
    expect(status).toMatchObject({ jobId, callback: { url: `${receiverUrl}${path}`, events: ['completed', 'cancelled'] }, deliveryId: `${jobId}:callback:completed` });
    expect(status.attempts).toEqual([expect.objectContaining({ attempt: 1, event: 'completed', statusCode: 200, ok: true, error: null })]);

    const [delivery] = deliveriesTo(path);
    expect(deliveriesTo(path)).toHaveLength(1);
    expect(delivery!.headers['content-type']).toBe('application/json');
    expect(delivery!.headers['x-lookup-delivery']).toBe(status.deliveryId);
    expect(delivery!.headers['x-lookup-event']).toBe('completed');
    const signature = delivery!.headers['x-lookup-signature'] as string;
    expect(verifyCallbackSignature(SECRET, signature, delivery!.body, Math.floor(Date.now() / 1000))).toBe(true);
    // Another secret, or a changed body, does not verify.
    expect(verifyCallbackSignature('another-secret-0123456789', signature, delivery!.body, Math.floor(Date.now() / 1000))).toBe(false);
    expect(verifyCallbackSignature(SECRET, signature, delivery!.body.replace('Completed', 'Cancelled'), Math.floor(Date.now() / 1000))).toBe(false);
    const payload = JSON.parse(delivery!.body);
    expect(payload).toMatchObject({ deliveryId: status.deliveryId, event: 'completed', job: { jobId, status: 'Completed', target: '127.0.0.2' } });
    expect(payload.job.results).toEqual([expect.objectContaining({ serviceType: 'GeoIP', status: 'Succeeded' })]);
  });

  it('retries a failed delivery through the broker, with the same delivery id, until it succeeds', async () => {
    const path = '/flaky/1';
    const jobId = await submit({ target: '127.0.0.2', services: ['GeoIP'], callback: { url: `${receiverUrl}${path}` } });
    const status = await waitState(jobId, 'delivered');
    expect(status.attempts.map((a) => [a.attempt, a.statusCode, a.ok])).toEqual([
      [1, 500, false],
      [2, 200, true],
    ]);
    expect(status.attempts[0]!.error).toContain('500');
    const deliveries = deliveriesTo(path);
    expect(deliveries.map((d) => d.headers['x-lookup-attempt'])).toEqual(['1', '2']);
    expect(new Set(deliveries.map((d) => d.headers['x-lookup-delivery']))).toEqual(new Set([`${jobId}:callback:completed`]));
  });

  it('dead-letters a delivery after CALLBACK_MAX_ATTEMPTS failed attempts, with its reason', async () => {
    const path = '/down/1';
    const jobId = await submit({ target: '127.0.0.2', services: ['GeoIP'], callback: { url: `${receiverUrl}${path}` } });
    const status = await waitState(jobId, 'dead-lettered');
    expect(status.attempts.map((a) => [a.attempt, a.statusCode, a.ok])).toEqual([
      [1, 503, false],
      [2, 503, false],
      [3, 503, false],
    ]);
    expect(deliveriesTo(path)).toHaveLength(3);
    // The last attempt's message is in the dead-letter queue, saying why.
    const conn = await amqp.connect(AMQP_URL);
    try {
      const ch = await conn.createChannel();
      const dead = await waitFor(async () => {
        const msg = await ch.get(topology(ns).queues.deadLetter, { noAck: false });
        if (!msg) return undefined;
        ch.nack(msg, false, true);
        return msg;
      }, 10_000);
      expect(dead.properties.correlationId).toBe(jobId);
      expect(String(dead.properties.headers?.['x-dead-letter-reason'])).toContain('CALLBACK_UNDELIVERABLE');
      expect(String(dead.properties.headers?.['x-dead-letter-reason'])).toContain('503');
      expect(JSON.parse(dead.content.toString())).toMatchObject({ jobId, attempt: 3, deliveryId: `${jobId}:callback:completed` });
      await ch.close();
    } finally {
      await conn.close();
    }
  });

  it('delivers `cancelled` when the job is cancelled, and nothing for an event not asked for', async () => {
    const cancelled = await submit({ target: '127.0.0.2', services: ['RDAP'], callback: { url: `${receiverUrl}/ok/cancelled` } });
    const notAsked = await submit({ target: '127.0.0.2', services: ['RDAP'], callback: { url: `${receiverUrl}/ok/not-asked`, events: ['completed'] } });
    expect((await callbacksOf(cancelled)).state).toBe('waiting');
    for (const id of [cancelled, notAsked]) expect((await fetch(`${suite.apiUrl}/api/lookup/${id}`, { method: 'DELETE' })).status).toBe(202);
    const status = await waitState(cancelled, 'delivered');
    expect(status.deliveryId).toBe(`${cancelled}:callback:cancelled`);
    expect(JSON.parse(deliveriesTo('/ok/cancelled')[0]!.body)).toMatchObject({ event: 'cancelled', job: { jobId: cancelled, status: 'Cancelled' } });
    expect(await waitState(notAsked, 'skipped')).toMatchObject({ attempts: [] });
    expect(deliveriesTo('/ok/not-asked')).toHaveLength(0);
  });

  it('delivers `completed` for a job the deadline sweep finished (its missing services TimedOut)', async () => {
    const jobId = await submit({ target: '127.0.0.2', services: ['RDAP'], callback: { url: `${receiverUrl}/ok/timed-out` } });
    const status = await waitState(jobId, 'delivered');
    expect(status.deliveryId).toBe(`${jobId}:callback:completed`);
    expect(deliveriesTo('/ok/timed-out')).toHaveLength(1);
    const payload = JSON.parse(deliveriesTo('/ok/timed-out')[0]!.body);
    expect(payload).toMatchObject({ event: 'completed', job: { jobId, status: 'Completed' } });
    expect(payload.job.results).toEqual([expect.objectContaining({ serviceType: 'RDAP', status: 'TimedOut' })]);
  });

  it('answers the callbacks of a job without one, and 404 for an unknown job', async () => {
    const jobId = await submit({ target: '127.0.0.2', services: ['GeoIP'] });
    expect(await callbacksOf(jobId)).toEqual({ jobId, callback: null, deliveryId: null, state: 'none', attempts: [] });
    expect((await fetch(`${suite.apiUrl}/api/lookup/3f2504e0-4f89-41d3-9a0c-0305e82c3301/callbacks`)).status).toBe(404);
    expect((await fetch(`${suite.apiUrl}/api/lookup/not-an-id/callbacks`)).status).toBe(400);
  });
});

describe('forged callback.deliver messages', () => {
  it("send nothing a stranger asks for: the URL and body are the stored job's, the delivery id is the job's own, and the job must have ended with that event", async () => {
    // A job still running (the RDAP fixture answers after 60 s), and a job whose callback was delivered.
    const running = await submit({ target: '127.0.0.3', services: ['RDAP'], callback: { url: `${receiverUrl}/ok/forged-running` } });
    const done = await submit({ target: '127.0.0.2', services: ['GeoIP'], callback: { url: `${receiverUrl}/ok/forged-done` } });
    await waitState(done, 'delivered');

    const conn = await amqp.connect(AMQP_URL);
    try {
      const ch = await conn.createConfirmChannel();
      let n = 0;
      const forge = async (jobId: string, fields: Record<string, unknown>) => {
        const body = {
          messageId: `forged-${++n}`,
          correlationId: jobId,
          schemaVersion: 1,
          occurredAt: new Date().toISOString(),
          jobId,
          deliveryId: `${jobId}:callback:completed`,
          event: 'completed',
          attempt: 1,
          // Not a field of the contract: never where a delivery goes.
          url: `${receiverUrl}/stranger`,
          ...fields,
        };
        ch.publish(topology(ns).exchanges.commands, 'callback.deliver', Buffer.from(JSON.stringify(body)), { messageId: body.messageId, correlationId: jobId, persistent: true });
        await ch.waitForConfirms();
        return body.messageId;
      };
      const poison = [
        await forge(running, { deliveryId: 'made-up-1' }),
        await forge(running, {}),
        await forge(running, { attempt: 2 }),
        await forge(done, { deliveryId: 'made-up-2' }),
        await forge(done, { event: 'cancelled', deliveryId: `${done}:callback:cancelled` }),
      ];
      // Genuine-looking duplicates of the finished job's delivery: a retry of it, and its first attempt again.
      await forge(done, { attempt: 2 });
      await forge(done, {});

      // The five that do not match their job's delivery are dead-lettered, each with its reason.
      const reasons = new Map<string, string>();
      await waitFor(async () => {
        const others = [];
        for (let msg = await ch.get(topology(ns).queues.deadLetter); msg; msg = await ch.get(topology(ns).queues.deadLetter)) {
          const id = String(msg.properties.messageId);
          if (poison.includes(id)) {
            reasons.set(id, String(msg.properties.headers?.['x-dead-letter-reason']));
            ch.ack(msg);
          } else others.push(msg);
        }
        for (const m of others) ch.nack(m, false, true);
        return reasons.size === poison.length ? true : undefined;
      }, 20_000);
      expect(reasons.get(poison[0]!)).toMatch(/delivery id "made-up-1", not job .*'s/);
      expect(reasons.get(poison[1]!)).toMatch(/has not ended \(status (Pending|Processing)\)/);
      expect(reasons.get(poison[2]!)).toMatch(/was never started/);
      expect(reasons.get(poison[3]!)).toMatch(/delivery id "made-up-2"/);
      expect(reasons.get(poison[4]!)).toMatch(/for event 'cancelled', but job .* ended completed/);
      await ch.close();
    } finally {
      await conn.close();
    }

    // A job submitted after them, delivered: the saga has long taken the forged messages before it.
    const after = await submit({ target: '127.0.0.2', services: ['GeoIP'], callback: { url: `${receiverUrl}/ok/after-forged` } });
    await waitState(after, 'delivered');
    expect(deliveriesTo('/stranger')).toHaveLength(0);
    expect(deliveriesTo('/ok/forged-running')).toHaveLength(0);
    expect(deliveriesTo('/ok/forged-done')).toHaveLength(1);
    expect((await callbacksOf(running)).state).toBe('waiting');
    expect((await callbacksOf(done)).attempts).toHaveLength(1);
  });
});

describe('a callback host name that resolves to a private address', () => {
  // Its own suite: the target policy as in production (no ALLOW_PRIVATE_TARGETS; the job's target allowed by
  // TARGET_ALLOW_CIDRS), host names resolved by the DNS fixture, which answers example.test with 127.0.0.2, where a
  // receiver listens: a delivery that connected would reach it.
  const ns2 = newNamespace('callbacks-dns');
  let suite2: Suite;
  let dns: Awaited<ReturnType<typeof startDnsFixture>>;
  const hits: string[] = [];
  const privateReceiver = http.createServer((req, res) => {
    hits.push(req.url ?? '/');
    req.resume();
    res.end();
  });
  let port = 0;

  beforeAll(async () => {
    await new Promise<void>((r) => privateReceiver.listen(0, '127.0.0.2', r));
    port = (privateReceiver.address() as { port: number }).port;
    dns = await startDnsFixture({});
    suite2 = await startSuite({
      namespace: ns2,
      services: ['api', 'saga', 'geoip'],
      env: { TARGET_ALLOW_CIDRS: '127.0.0.50/32', DNS_SERVERS: dns.address, CALLBACK_SECRET: SECRET, CALLBACK_MAX_ATTEMPTS: '3', RETRY_BASE_DELAY_MS: '50', RETRY_MAX_DELAY_MS: '200' },
    });
  });

  afterAll(async () => {
    await suite2?.stop();
    await dns?.close();
    privateReceiver.closeAllConnections();
    await new Promise((r) => privateReceiver.close(r));
    await cleanupNamespace(ns2);
  });

  it('is refused when the delivery connects: no connection, no retry, the reason recorded', async () => {
    const literal = await fetch(`${suite2.apiUrl}/api/lookup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ target: '127.0.0.50', services: ['GeoIP'], callback: { url: `http://127.0.0.2:${port}/literal` } }),
    });
    expect(literal.status).toBe(400);
    expect(await literal.json()).toMatchObject({ code: 'CALLBACK_REFUSED' });

    const res = await fetch(`${suite2.apiUrl}/api/lookup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ target: '127.0.0.50', services: ['GeoIP'], callback: { url: `http://example.test:${port}/by-name` } }),
    });
    expect(res.status, await res.clone().text()).toBe(202);
    const { jobId } = (await res.json()) as { jobId: string };
    const status = await waitFor(async () => {
      const s = (await (await fetch(`${suite2.apiUrl}/api/lookup/${jobId}/callbacks`)).json()) as CallbackStatus;
      return s.state === 'dead-lettered' ? s : undefined;
    }, 30_000);
    expect(status.attempts).toHaveLength(1);
    expect(status.attempts[0]).toMatchObject({ attempt: 1, ok: false, statusCode: null });
    expect(status.attempts[0]!.error).toMatch(/example\.test resolves to 127\.0\.0\.2, which is refused by the target policy \(rule 'loopback'\)/);
    expect(hits).toEqual([]);
  });
});

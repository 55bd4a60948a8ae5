// The HTTP edge with real sockets on loopback (findings 7 and the header limit): what inject() cannot show,
// because node's HTTP server enforces these before Fastify sees a request.
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { loadConfig, type Config } from '@lookup/config';
import type { JobDocument } from '@lookup/contracts';
import { createLogger } from '@lookup/logging';
import { buildApp } from './app.ts';
import { createJobEventHub } from './job-events.ts';
import type { ApiDeps } from './deps.ts';

const apps: FastifyInstance[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  while (apps.length > 0) await apps.pop()!.close();
});

const JOB = '3f1c2a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b';
const doc = (status: JobDocument['status']): JobDocument => ({
  jobId: JOB, target: '8.8.8.8', targetType: 'IPAddress', status, createdAt: new Date().toISOString(),
  completedAt: status === 'Completed' ? new Date().toISOString() : null, completionPercentage: status === 'Completed' ? 100 : 0,
  requestedServices: ['GeoIP'], results: [],
});

async function listening(overrides: Partial<Config>) {
  const config: Readonly<Config> = Object.freeze({ ...loadConfig({}), ...overrides });
  const documents = new Map<string, JobDocument>();
  const hub = createJobEventHub();
  const deps: ApiDeps = {
    config,
    logger: createLogger({ service: 'api-test', level: 'silent' }),
    jobs: {
      create: async () => undefined,
      discard: async () => undefined,
      getDocument: async (id) => documents.get(id),
      markNotified: async () => true,
      cancel: async () => ({ disposition: 'missing', status: '', hasCallback: false }),
    },
    idempotency: { claim: async () => ({ state: 'new' }), release: async () => undefined },
    rateLimiter: { check: async () => ({ allowed: true, retryAfterSeconds: 0, limit: 0, remaining: 0 }) },
    publishJobSubmitted: async () => undefined,
    publishCommand: async () => undefined,
    publishJobCompleted: async () => undefined,
    readiness: async () => ({ rabbitmq: true, redis: true }),
    jobEvents: hub.source,
  };
  const app = await buildApp(deps);
  apps.push(app);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  return { app, port, documents, hub };
}

/** A raw client: everything the server sent, and a promise of the moment it closed the connection. */
function open(port: number) {
  const socket = connect({ host: '127.0.0.1', port });
  sockets.push(socket);
  let received = '';
  socket.on('data', (d) => void (received += d.toString('latin1')));
  socket.on('error', () => undefined);
  const connected = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, connected, closed, received: () => received };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The status and JSON body of a raw HTTP/1.1 answer. */
function parseAnswer(raw: string): { status: number; body: Record<string, unknown> } {
  const [head, body] = raw.split('\r\n\r\n', 2) as [string, string];
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), body: JSON.parse(body) as Record<string, unknown> };
}

describe('timeouts (finding 7)', () => {
  it('cuts a body that trickles in one byte at a time at the request timeout: 408 JSON, connection closed', async () => {
    const { port } = await listening({ apiRequestTimeoutMs: 1500, apiHeadersTimeoutMs: 1000 });
    const c = open(port);
    await c.connected;
    c.socket.write('POST /api/lookup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n');
    let sent = 0;
    let closed = false;
    void c.closed.then(() => (closed = true));
    // One byte every 300 ms would take 300 s to send the body; without a request timeout the server waits for it
    // (this loop gives up after 15 s, inside the test timeout).
    while (!closed && sent < 50) {
      if (!c.socket.destroyed) c.socket.write('{');
      sent++;
      await sleep(300);
    }
    expect(closed, 'the server closed the connection').toBe(true);
    const answer = parseAnswer(c.received());
    expect(answer.status).toBe(408);
    expect(answer.body).toEqual({ error: 'Request timeout', message: expect.stringMatching(/1500 ms/), code: 'REQUEST_TIMEOUT' });
  });

  it('cuts headers that trickle in at the headers timeout', async () => {
    const { port } = await listening({ apiRequestTimeoutMs: 5000, apiHeadersTimeoutMs: 1000 });
    const c = open(port);
    await c.connected;
    c.socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\n');
    let closed = false;
    void c.closed.then(() => (closed = true));
    for (let i = 0; !closed && i < 50; i++) {
      if (!c.socket.destroyed) c.socket.write(`X-Slow-${i}: a\r\n`);
      await sleep(300);
    }
    expect(closed).toBe(true);
    expect(parseAnswer(c.received()).status).toBe(408);
  });

  it('does not cut the event stream, a long response, at the request timeout', async () => {
    const { port, documents, hub } = await listening({ apiRequestTimeoutMs: 1000, apiHeadersTimeoutMs: 1000 });
    documents.set(JOB, doc('Processing'));
    const res = await fetch(`http://127.0.0.1:${port}/api/lookup/${JOB}/events`);
    expect(res.status).toBe(200);
    const body = res.text();
    await sleep(3000); // three request timeouts, and several of node's timeout checks
    documents.set(JOB, doc('Completed'));
    hub.notify(JOB);
    const events = (await body).split('\n\n').filter((b) => b.startsWith('event:')).map((b) => b.split('\n')[0]);
    expect(events).toEqual(['event: status', 'event: completed']);
  });
});

describe('connection caps (finding 7)', () => {
  it('closes at once a connection beyond API_MAX_CONNECTIONS_PER_CLIENT from one address; the others keep working', async () => {
    const { port } = await listening({ apiMaxConnectionsPerClient: 3 });
    const held = [open(port), open(port), open(port)];
    await Promise.all(held.map((c) => c.connected));
    // Let the server accept them before the next one arrives.
    await sleep(100);
    const extra = open(port);
    await extra.connected;
    extra.socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n');
    await extra.closed;
    expect(extra.received()).toBe(''); // closed without an answer

    // The three held connections still work.
    const first = held[0]!;
    first.socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await first.closed;
    expect(first.received()).toMatch(/^HTTP\/1\.1 200/);
    // One slot is free again: a new connection is served.
    await sleep(100);
    const again = open(port);
    await again.connected;
    again.socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await again.closed;
    expect(again.received()).toMatch(/^HTTP\/1\.1 200/);
  });

  it('caps the total with API_MAX_CONNECTIONS', async () => {
    const { app, port } = await listening({ apiMaxConnections: 2, apiMaxConnectionsPerClient: 0 });
    expect(app.server.maxConnections).toBe(2);
    const held = [open(port), open(port)];
    await Promise.all(held.map((c) => c.connected));
    await sleep(100);
    const extra = open(port);
    await extra.connected;
    extra.socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n');
    await extra.closed;
    expect(extra.received()).toBe('');
  });
});

describe('header limit', () => {
  it('answers 431 with a JSON {error, message} when the headers exceed API_MAX_HEADER_BYTES, and closes', async () => {
    const { port } = await listening({ apiMaxHeaderBytes: 2048 });
    const c = open(port);
    await c.connected;
    c.socket.write(`GET /api/lookup/services HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(4000)}\r\n\r\n`);
    await c.closed;
    const answer = parseAnswer(c.received());
    expect(answer.status).toBe(431);
    expect(answer.body).toEqual({ error: 'Request header fields too large', message: expect.stringMatching(/2048 bytes/), code: 'HEADERS_TOO_LARGE' });
  });

  it('answers 431, not 414, to a URL longer than API_MAX_HEADER_BYTES (node counts the request line)', async () => {
    const { port } = await listening({ apiMaxHeaderBytes: 2048, apiMaxUrlLength: 1024 });
    const c = open(port);
    await c.connected;
    c.socket.write(`GET /api/lookup/services?q=${'a'.repeat(3000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await c.closed;
    expect(parseAnswer(c.received()).status).toBe(431);
    // Between the two limits: Fastify's 414.
    const d = open(port);
    await d.connected;
    d.socket.write(`GET /api/lookup/services?q=${'a'.repeat(1500)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    await d.closed;
    expect(parseAnswer(d.received())).toMatchObject({ status: 414, body: { error: 'URI too long' } });
  });

  it('answers 417 JSON (not node\'s bare 417) to an Expect header other than 100-continue', async () => {
    const { port } = await listening({});
    const c = open(port);
    await c.connected;
    c.socket.write('GET /api/lookup/services HTTP/1.1\r\nHost: x\r\nExpect: tea\r\n\r\n');
    await c.closed;
    expect(parseAnswer(c.received())).toEqual({ status: 417, body: { error: 'Expectation failed', message: expect.any(String), code: 'EXPECTATION_FAILED' } });
  });

  it('answers 400 JSON to bytes that are not HTTP', async () => {
    const { port } = await listening({});
    const c = open(port);
    await c.connected;
    c.socket.write('\x16\x03\x01 this is not http\r\n\r\n');
    await c.closed;
    const answer = parseAnswer(c.received());
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ error: 'Bad request' });
  });
});

describe('raw HTTP properties (fast-check over real sockets)', () => {
  /** Raw requests: what node's parser sees before Fastify. */
  const RAW_RUNS = 400;
  const token = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}$/);
  const nasty = fc.string({ unit: fc.constantFrom('a', ' ', '\t', '\r', '\n', '\0', ':', '/', '%', '\x7f', 'é', '\u2028'), maxLength: 12 });
  const rawRequest = fc.record({
    method: fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'OPTIONS', 'HEAD') },
      { weight: 1, arbitrary: fc.constantFrom('CONNECT', 'TRACE', 'PRI', 'PATCH') },
      { weight: 1, arbitrary: token },
    ),
    path: fc.oneof(
      fc.constantFrom('/api/lookup', '/api/lookup/services', `/api/lookup/${JOB}`, `/api/lookup/${JOB}/events`, '/health/live', '/swagger/json', '*', '/api/resources/db/x'),
      fc.webPath(),
      nasty.map((s) => `/api/${s}`),
      fc.constant(`/api/lookup/services?q=${'a'.repeat(3000)}`),
    ),
    version: fc.oneof({ weight: 6, arbitrary: fc.constant('HTTP/1.1') }, { weight: 1, arbitrary: fc.constant('HTTP/1.0') }, { weight: 1, arbitrary: fc.constantFrom('HTTP/2.0', 'HTTP/1.1x', 'http/1.1', '') }),
    headers: fc.array(
      fc.oneof(
        { weight: 4, arbitrary: fc.tuple(fc.constantFrom('X-API-Key', 'Expect', 'Upgrade', 'Origin', 'Authorization', 'Idempotency-Key'), token) },
        { weight: 1, arbitrary: fc.tuple(fc.constantFrom('Transfer-Encoding', 'Content-Length', 'Host'), token) },
        { weight: 4, arbitrary: fc.tuple(fc.constant('Content-Type'), fc.constantFrom('application/json', 'text/plain', 'application/json; charset=utf-8')) },
        { weight: 1, arbitrary: fc.tuple(fc.oneof(token, nasty), fc.oneof(token, nasty)) },
        { weight: 1, arbitrary: fc.constant(['X-Big', 'b'.repeat(5000)] as [string, string]) },
      ),
      { maxLength: 4 },
    ),
    body: fc.oneof(fc.constant(''), fc.json(), fc.string({ maxLength: 50 })),
    lengthDelta: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -5, max: 5 }) }),
  });

  it(`any request bytes: an answer < 500 (JSON {error, message} when >= 400) or a close, never a hang (${RAW_RUNS} runs)`, async () => {
    const { port, documents } = await listening({ apiRequestTimeoutMs: 1000, apiHeadersTimeoutMs: 1000, apiMaxHeaderBytes: 4096, apiMaxUrlLength: 2048 });
    documents.set(JOB, doc('Completed'));
    await fc.assert(
      fc.asyncProperty(rawRequest, async (r) => {
        const length = Math.max(0, Buffer.byteLength(r.body) + r.lengthDelta);
        const head = [`${r.method} ${r.path} ${r.version}`.trimEnd(), 'Host: x', 'Connection: close', `Content-Length: ${length}`, ...r.headers.map(([k, v]) => `${k}: ${v}`)];
        const c = open(port);
        await c.connected;
        c.socket.write(`${head.join('\r\n')}\r\n\r\n${r.body}`);
        // Connection: close, and the timeouts are 1 s: the server answers and closes, or closes, well within 10 s.
        const hang = sleep(10_000).then(() => 'hang');
        expect(await Promise.race([c.closed.then(() => 'closed'), hang]), head[0]).toBe('closed');
        const raw = c.received();
        if (raw === '') return;
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(raw)?.[1]);
        expect(status, `${head[0]} -> ${raw.slice(0, 80)}`).toBeLessThan(500);
        if (status < 400 || r.method === 'HEAD') return;
        const [headers, rest = ''] = raw.split('\r\n\r\n', 2);
        const declared = Number(/\r\ncontent-length: (\d+)/i.exec(headers!)?.[1]);
        expect(headers, head[0]).toMatch(/\r\ncontent-type: application\/json/i);
        const parsed = JSON.parse(Buffer.from(rest, 'latin1').subarray(0, declared).toString('utf8')) as Record<string, unknown>;
        expect(typeof parsed.error, `${head[0]} -> ${status}`).toBe('string');
        expect(typeof parsed.message, `${head[0]} -> ${status}`).toBe('string');
      }),
      { numRuns: RAW_RUNS },
    );
  }, 170_000);
});

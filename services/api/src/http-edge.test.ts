// The HTTP edge with real sockets on loopback (findings 7 and the header limit): what inject() cannot show,
// because node's HTTP server enforces these before Fastify sees a request.
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
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
      cancel: async () => ({ disposition: 'missing', status: '' }),
    },
    idempotency: { claim: async () => ({ state: 'new' }), release: async () => undefined },
    rateLimiter: { check: async () => ({ allowed: true, retryAfterSeconds: 0, limit: 0, remaining: 0 }) },
    publishJobSubmitted: async () => undefined,
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
    expect(answer.body).toEqual({ error: 'Request timeout', message: expect.stringMatching(/1500 ms/) });
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
    expect(answer.body).toEqual({ error: 'Request header fields too large', message: expect.stringMatching(/2048 bytes/) });
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

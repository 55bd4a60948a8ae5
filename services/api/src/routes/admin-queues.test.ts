import { createServer, type IncomingMessage, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { harness } from '../testing/app-harness.ts';
import { amqpVhost } from '../rabbitmq-queues.ts';

const servers: Server[] = [];

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}
afterEach(async () => {
  while (servers.length > 0) await new Promise((r) => servers.pop()!.close(r));
});

/** A stand-in for RabbitMQ's management API on a loopback port: answers `reply` and records each request. */
async function fakeManagement(reply: (req: IncomingMessage) => { status: number; body: unknown }) {
  const requests: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    requests.push(req);
    const { status, body } = reply(req);
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { requests, url: (auth = 'ops:pa%3Ass') => `http://${auth}@127.0.0.1:${port}` };
}

const queue = (name: string, messages: number, consumers: number) => ({
  name, messages, messages_ready: messages - Math.min(1, messages), messages_unacknowledged: Math.min(1, messages), consumers, message_stats: { publish_details: { rate: 2.345 }, deliver_get_details: { rate: 1 } },
});

describe('GET /api/admin/queues', () => {
  it("summarises only this namespace's queues, asking the vhost of AMQP_URL with the management URL's credentials", async () => {
    const mgmt = await fakeManagement(() => ({
      status: 200,
      body: { items: [queue('dash.saga', 3, 2), queue('dash.lookup.ping', 0, 1), queue('dashboard.saga', 9, 9), queue('other.saga', 7, 1)] },
    }));
    const h = await harness({ adminApiKey: 'adm', namespace: 'dash', amqpUrl: 'amqp://guest:guest@127.0.0.1:5672/suite%2Fa', rabbitmqManagementUrl: mgmt.url() });
    const res = await h.app.inject({ method: 'GET', url: '/api/admin/queues', headers: { 'x-admin-key': 'adm' } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      available: true,
      vhost: 'suite/a',
      queues: [
        { name: 'dash.lookup.ping', messages: 0, ready: 0, unacked: 0, consumers: 1, publishRate: 2.35, deliverRate: 1 },
        { name: 'dash.saga', messages: 3, ready: 2, unacked: 1, consumers: 2, publishRate: 2.35, deliverRate: 1 },
      ],
    });
    const req = mgmt.requests[0]!;
    expect(req.url).toMatch(/^\/api\/queues\/suite%2Fa\?/);
    expect(new URL(req.url!, 'http://x').searchParams.get('name')).toBe('^dash\\.');
    expect(req.headers.authorization).toBe(`Basic ${Buffer.from('ops:pa:ss').toString('base64')}`);
  });

  it('answers available: false with the reason when the management API is unreachable or refuses', async () => {
    const closed = await freePort(); // nothing listens there
    const h = await harness({ adminApiKey: 'adm', rabbitmqManagementUrl: `http://127.0.0.1:${closed}` });
    const down = await h.app.inject({ method: 'GET', url: '/api/admin/queues', headers: { 'x-admin-key': 'adm' } });
    expect(down.statusCode).toBe(200);
    expect(down.json()).toEqual({ available: false, reason: `RabbitMQ management API not reachable at http://127.0.0.1:${closed} (ECONNREFUSED)` });

    const mgmt = await fakeManagement(() => ({ status: 401, body: { error: 'not_authorised' } }));
    const h2 = await harness({ adminApiKey: 'adm', rabbitmqManagementUrl: mgmt.url('u:wrong') });
    const refused = await h2.app.inject({ method: 'GET', url: '/api/admin/queues', headers: { 'x-admin-key': 'adm' } });
    expect(refused.json()).toEqual({ available: false, reason: expect.stringMatching(/refused the credentials \(401\)/) });
    expect(JSON.stringify(refused.json())).not.toContain('wrong');
  });

  it('needs the admin key, and does not exist without ADMIN_API_KEY', async () => {
    const mgmt = await fakeManagement(() => ({ status: 200, body: [] }));
    const h = await harness({ adminApiKey: 'adm', rabbitmqManagementUrl: mgmt.url() });
    expect((await h.app.inject({ method: 'GET', url: '/api/admin/queues' })).json()).toMatchObject({ code: 'ADMIN_KEY_REQUIRED' });
    expect((await h.app.inject({ method: 'GET', url: '/api/admin/queues', headers: { 'x-admin-key': 'no' } })).statusCode).toBe(401);
    expect(mgmt.requests).toHaveLength(0);
    const off = await harness({ rabbitmqManagementUrl: mgmt.url() });
    expect((await off.app.inject({ method: 'GET', url: '/api/admin/queues' })).statusCode).toBe(404);
  });
});

describe('amqpVhost', () => {
  it.each([
    ['amqp://127.0.0.1', '/'],
    ['amqp://u:p@127.0.0.1:5672/', '/'],
    ['amqp://127.0.0.1/%2F', '/'],
    ['amqp://127.0.0.1/prod', 'prod'],
  ])('%s -> %s', (url, vhost) => expect(amqpVhost(url)).toBe(vhost));
});

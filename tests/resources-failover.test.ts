// Failover of pinned resources under real faults: SIGKILL of the owner mid-traffic, and SIGSTOP of the owner
// past its lease followed by SIGCONT (the stale owner must serve nothing and write nothing).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { rawAmqp } from './support/amqp.ts';
import { waitFor } from './support/processes.ts';
import { resourceEnv, sql, sqlUntilOk, startApi, startWorker, stopAll, type Api, type Worker } from './support/resources.ts';

const ns = newNamespace('resfail');
const re = resourceEnv(ns);
const workers: Worker[] = [];
let api: Api;

beforeAll(async () => {
  api = await startApi(re.env);
  workers.push(await startWorker(re.env, 'a'), await startWorker(re.env, 'b'));
});

afterAll(async () => {
  await stopAll([...workers, api]);
  await cleanupNamespace(ns);
  re.cleanup();
});

const byId = (id: string | undefined) => workers.find((w) => w.id === id)!;

describe('pinned resource failover', () => {
  it('serves a key from another worker, with a higher epoch and its data intact, after the owner is SIGKILLed mid-traffic', async () => {
    const first = await sqlUntilOk(api.url, 'killme', 'CREATE TABLE t (v INTEGER PRIMARY KEY)');
    const victim = byId(first.owner);
    const acked: number[] = [];
    const seen: { owner: string; epoch: number }[] = [];
    let killed = false;
    let i = 0;
    // Sequential writes; the owner is killed while they flow. Each write either succeeds (200) or fails over.
    while (acked.filter((v) => v >= 1000).length < 10) {
      i += 1;
      if (acked.length === 10 && !killed) {
        killed = true;
        // Not awaited: traffic keeps flowing while the process dies.
        victim.process.child.kill('SIGKILL');
      }
      const v = killed ? 1000 + i : i;
      const r = await sql(api.url, 'killme', 'INSERT INTO t (v) VALUES (?) RETURNING v', [v]);
      if (r.status === 200) {
        acked.push(r.body.rows[0].v);
        seen.push({ owner: r.owner!, epoch: r.epoch! });
      } else {
        expect([503, 504], JSON.stringify(r.body)).toContain(r.status);
        await new Promise((res) => setTimeout(res, 50));
      }
      expect(i).toBeLessThan(2000);
    }
    await victim.process.exited;
    const last = seen.at(-1)!;
    expect(last.owner).not.toBe(victim.id);
    expect(last.epoch).toBeGreaterThan(first.epoch!);
    const rows = await sqlUntilOk(api.url, 'killme', 'SELECT v FROM t ORDER BY v');
    const stored = new Set(rows.body.rows.map((r: { v: number }) => r.v));
    for (const v of acked) expect(stored.has(v), `acknowledged write ${v} lost`).toBe(true);
    // Epochs only grow, and each epoch belongs to one owner.
    const epochOwner = new Map<number, string>();
    for (const s of seen) {
      expect(epochOwner.get(s.epoch) ?? s.owner).toBe(s.owner);
      epochOwner.set(s.epoch, s.owner);
    }
    const epochs = seen.map((s) => s.epoch);
    expect(epochs).toEqual([...epochs].sort((a, b) => a - b));
  });

  it('never lets a SIGSTOPped owner serve or write after its lease moved, even once it is SIGCONTinued', async () => {
    const spare = await startWorker(re.env, 'c');
    workers.push(spare);
    const first = await sqlUntilOk(api.url, 'stopme', 'CREATE TABLE c (id INTEGER PRIMARY KEY, n INTEGER); INSERT INTO c VALUES (1, 0)');
    const owner = byId(first.owner);
    const increments: { n: number; owner: string; epoch: number }[] = [];
    const inc = async () => {
      const r = await sql(api.url, 'stopme', 'UPDATE c SET n = n + 1 WHERE id = 1 RETURNING n');
      if (r.status === 200) increments.push({ n: r.body.rows[0].n, owner: r.owner!, epoch: r.epoch! });
      else expect([503, 504], JSON.stringify(r.body)).toContain(r.status);
      return r;
    };
    for (let k = 0; k < 5; k++) expect((await inc()).status).toBe(200);

    // Freeze the owner while it is idle, and keep writing: the key must move to another worker.
    owner.process.child.kill('SIGSTOP');
    let moved;
    for (let k = 0; k < 40 && !moved; k++) {
      const r = await inc();
      if (r.status === 200) moved = r;
    }
    expect(moved, 'the key never moved off the stopped owner').toBeDefined();
    expect(moved!.owner).not.toBe(owner.id);
    expect(moved!.epoch).toBeGreaterThan(first.epoch!);
    for (let k = 0; k < 5; k++) await inc();

    // Wake the stale owner and keep writing while it comes back.
    owner.process.child.kill('SIGCONT');
    for (let k = 0; k < 10; k++) await inc();

    // The stale owner has closed the key: it says so in its log once it runs again.
    await waitFor(async () => (owner.process.lines.some((l) => l.includes('closing resource') && l.includes('stopme')) ? true : undefined), 20_000);

    // Asked directly under its old epoch (bypassing the API), it refuses instead of serving stale data.
    const amqp = await rawAmqp();
    try {
      // Under the API reply-queue prefix: a worker answers no other queue.
      const replyQueue = `${ns}.resource-reply.test-${randomUUID().slice(0, 8)}`;
      await amqp.channel.assertQueue(replyQueue, { exclusive: true, autoDelete: true });
      const requestId = randomUUID();
      await amqp.sendToQueue(
        `${ns}.resource.${owner.id}`,
        {
          type: 'request', requestId, key: 'db/stopme', epoch: first.epoch, method: 'POST', query: '',
          headers: { 'content-type': 'application/json' },
          body: Buffer.from(JSON.stringify({ query: 'UPDATE c SET n = n + 1000 WHERE id = 1 RETURNING n' })).toString('base64'),
          deadline: Date.now() + 5000,
        },
        { replyTo: replyQueue, correlationId: requestId, persistent: false },
      );
      const [reply] = await amqp.drain(replyQueue, 1, 10_000);
      expect(reply, 'no reply from the stale owner').toBeDefined();
      const body = JSON.parse(reply!.content.toString());
      expect(body.type).toBe('refused');
      expect(['not-owner', 'stale-epoch', 'lease-lost']).toContain(body.reason);
    } finally {
      await amqp.close();
    }

    // Never two writers: every acknowledged increment is distinct and in order, and the stored value is exactly
    // the number of acknowledged increments (a stale owner writing its old copy back would lose some; one
    // applying an abandoned or refused request would add some).
    const values = increments.map((x) => x.n);
    expect(values).toEqual(values.map((_, k) => k + 1));
    const final = await sqlUntilOk(api.url, 'stopme', 'SELECT n FROM c WHERE id = 1');
    expect(final.body.rows[0].n).toBe(increments.length);
    expect(final.owner).not.toBe(owner.id);
    // After the move, only the new owner answered.
    const afterMove = increments.slice(increments.findIndex((x) => x.epoch === moved!.epoch));
    expect(new Set(afterMove.map((x) => x.owner))).toEqual(new Set([moved!.owner]));
  });
});

import { randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { rawRedis } from './support/redis.ts';
import { RoutingKeys, SCHEMA_VERSION, SERVICE_CATALOGUE, commandMessageId, type JobDocument, type StoredResult, type TargetType } from '@lookup/contracts';
import { topology } from '@lookup/messaging';
import { createJobStore, keys } from '@lookup/store';
import { startDnsFixture, type DnsFixture } from './fixtures/index.ts';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { startSuite, waitFor, type Suite } from './support/processes.ts';
import { rawAmqp } from './support/amqp.ts';

// Issue 10, findings 1 and 10 (and "workers re-check the target policy on every command"): with
// ALLOW_PRIVATE_TARGETS unset, a domain that resolves to a loopback address, or a loopback literal in a forged
// command, must not be pinged. The DNS fixture answers example.test -> 127.0.0.2, dual.example.test -> 127.0.0.1
// and ::1, ipv6.example.test -> ::1. Every address stays on this machine; a recording `ping` on the Ping worker's
// PATH (PING_ENGINE=system) shows whether a probe was sent. TARGET_ALLOW_CIDRS=127.0.0.3/32 is the control: the
// suite does ping what the policy allows.

const ns = newNamespace('policy');
const t = topology(ns);
let suite: Suite;
let dns: DnsFixture;
let redis: Redis;
let amqp: Awaited<ReturnType<typeof rawAmqp>>;
let tmp: string;
let pingLog: string;

const service = (name: string) => SERVICE_CATALOGUE.find((s) => s.name === name)!;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'policy-ping-'));
  pingLog = path.join(tmp, 'runs.log');
  writeFileSync(pingLog, '');
  // A `ping` that records its arguments and reports one lost probe (a successful lookup, reachable: false).
  writeFileSync(
    path.join(tmp, 'ping'),
    `#!/bin/sh\necho "$@" >> '${pingLog}'\n` +
      'printf "PING x (x) 56(84) bytes of data.\\n\\n--- x ping statistics ---\\n1 packets transmitted, 0 received, 100%% packet loss, time 0ms\\n"\nexit 1\n',
  );
  chmodSync(path.join(tmp, 'ping'), 0o755);
  dns = await startDnsFixture({ records: { a: { 'allowed.example.test': ['127.0.0.3'] } } });
  suite = await startSuite({
    namespace: ns,
    services: ['api', 'saga', 'ping', 'geoip', 'reverse-dns'],
    env: {
      DNS_SERVERS: dns.address,
      ALLOW_PRIVATE_TARGETS: 'false',
      TARGET_ALLOW_CIDRS: '127.0.0.3/32',
      PING_ENGINE: 'system',
      PING_COUNT: '1',
      PATH: `${tmp}:${process.env.PATH ?? ''}`,
      RATE_LIMIT_SUBMIT_PER_MIN: '0',
      RATE_LIMIT_API_PER_MIN: '0',
      RATE_LIMIT_GLOBAL_PER_MIN: '0',
    },
  });
  redis = rawRedis();
  amqp = await rawAmqp();
});

afterAll(async () => {
  await suite?.stop();
  await amqp?.close();
  redis?.disconnect();
  await dns?.close();
  await cleanupNamespace(ns);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function post(body: unknown) {
  const res = await fetch(`${suite.apiUrl}/api/lookup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const pingRuns = () => readFileSync(pingLog, 'utf8');
const pingWorkerLog = () => suite.processes.find((p) => p.name === 'ping')!.lines.join('\n');

/**
 * What a forger with access to the broker does: a job record for the result to land in, then a lookup command
 * published straight to the commands exchange, bypassing the API and the saga. Returns the job id and the stored
 * result, read with a raw Redis client.
 */
async function forge(target: string, targetType: TargetType, serviceName: string): Promise<{ jobId: string; result: StoredResult }> {
  const jobId = randomUUID();
  const s = service(serviceName);
  const now = new Date().toISOString();
  await createJobStore({ redis, namespace: ns, ttlSeconds: 600 }).create({
    jobId, target, targetType, services: [s.value], createdAt: now, deadlineAt: Date.now() + 120_000,
  });
  await amqp.publish(t.exchanges.commands, RoutingKeys.command(s.slug), {
    messageId: commandMessageId(jobId, s.value, 1), correlationId: jobId, schemaVersion: SCHEMA_VERSION, occurredAt: now, jobId,
    target, targetType, serviceType: s.value, attempt: 1,
  }, { messageId: commandMessageId(jobId, s.value, 1), correlationId: jobId });
  const raw = await waitFor(async () => (await redis.get(keys(ns).result(jobId, s.value))) ?? undefined, 30_000);
  return { jobId, result: JSON.parse(raw) as StoredResult };
}

describe('target policy, end to end (ALLOW_PRIVATE_TARGETS unset)', () => {
  it('the API refuses domains that resolve to loopback addresses, naming the rule', async () => {
    for (const [target, address] of [['example.test', '127.0.0.2'], ['dual.example.test', '127.0.0.1'], ['ipv6.example.test', '::1']] as const) {
      const res = await post({ target, services: ['Ping'] });
      expect(res.status, target).toBe(400);
      expect(res.body.error).toBe('Target not allowed');
      expect(res.body.message).toContain(`'${target}' resolves to ${address}, which the target policy refuses`);
      expect(res.body.message).toContain('rule loopback');
    }
    for (const target of ['127.0.0.1', '::ffff:7f00:1', '2002:7f00:1::1', '2001:0:4136:e378:8000:63bf:80ff:fffe']) {
      const res = await post({ target });
      expect(res.status, target).toBe(400);
      expect(res.body.message).toMatch(/rule (loopback|6to4-embedded-loopback|teredo-embedded-loopback)/);
    }
    expect(pingRuns()).toBe('');
  });

  it('forged lookup commands for those domains and for loopback literals are recorded Failed naming the rule, with the code in GET /api/lookup/{id}; nothing is pinged', async () => {
    const cases: [string, TargetType, string, RegExp, string][] = [
      ['example.test', 'Domain', 'Ping', /example\.test resolved to 127\.0\.0\.2, which the target policy refuses: .*rule loopback/, 'TARGET_REFUSED'],
      ['dual.example.test', 'Domain', 'Ping', /dual\.example\.test resolved to 127\.0\.0\.1, .*rule loopback/, 'TARGET_REFUSED'],
      ['ipv6.example.test', 'Domain', 'Ping', /ipv6\.example\.test resolved to ::1, .*rule loopback/, 'TARGET_REFUSED'],
      ['example.test', 'Domain', 'GeoIP', /rule loopback/, 'TARGET_REFUSED'],
      ['127.0.0.1', 'IPAddress', 'Ping', /^127\.0\.0\.1 is refused by the target policy \(rule loopback\)/, 'TARGET_REFUSED'],
      ['2002:7f00:1::1', 'IPAddress', 'Ping', /rule 6to4-embedded-loopback/, 'TARGET_REFUSED'],
      ['127.0.0.1', 'IPAddress', 'GeoIP', /rule loopback/, 'TARGET_REFUSED'],
      ['127.0.0.1', 'IPAddress', 'ReverseDNS', /rule loopback/, 'TARGET_REFUSED'],
      ['localhost', 'IPAddress', 'Ping', /not a valid lookup target/, 'TARGET_INVALID'],
      ['127.0.0.1', 'Domain', 'Ping', /is an IP address, not the Domain it claims/, 'TARGET_INVALID'],
    ];
    const forged = await Promise.all(cases.map(([target, type, name]) => forge(target, type, name)));
    forged.forEach(({ result }, i) => {
      const [target, type, name, message, code] = cases[i]!;
      expect(result, `${name} ${type} ${target}`).toMatchObject({ status: 'Failed', success: false, data: null, attempts: 1, errorCode: code });
      expect(result.errorMessage, `${name} ${target}`).toMatch(message);
    });
    // The code crosses the worker -> saga -> API boundary: the job document shows it.
    const docs = await Promise.all(
      forged.map(({ jobId }) =>
        waitFor(async () => {
          const d = (await (await fetch(`${suite.apiUrl}/api/lookup/${jobId}`)).json()) as JobDocument;
          return d.status === 'Completed' ? d : undefined;
        }, 30_000),
      ),
    );
    docs.forEach((doc, i) => {
      const [target, type, name, message, code] = cases[i]!;
      expect(doc.results, `${name} ${type} ${target}`).toEqual([
        expect.objectContaining({ serviceType: name, status: 'Failed', errorMessage: expect.stringMatching(message), errorCode: code }),
      ]);
    });
    expect(pingRuns()).toBe('');
    expect(pingWorkerLog()).toContain('target refused by the target policy; no lookup');
  });

  it('control: what the policy allows (TARGET_ALLOW_CIDRS=127.0.0.3/32) is pinged, through the API', async () => {
    const accepted = await post({ target: 'allowed.example.test', services: ['Ping', 'GeoIP'] });
    expect(accepted.status).toBe(202);
    const doc = await waitFor(async () => {
      const d = (await (await fetch(`${suite.apiUrl}${accepted.body.statusUrl as string}`)).json()) as JobDocument;
      return d.status === 'Completed' ? d : undefined;
    }, 30_000);
    expect(doc.results.find((r) => r.serviceType === 'Ping')).toMatchObject({
      status: 'Succeeded',
      data: expect.objectContaining({ ip: '127.0.0.3', resolvedFrom: 'allowed.example.test', method: 'icmp', reachable: false }),
    });
    expect(pingRuns()).toMatch(/127\.0\.0\.3/);
    expect(pingRuns()).not.toMatch(/127\.0\.0\.[12]\b|::1|2002:/);
  });
});

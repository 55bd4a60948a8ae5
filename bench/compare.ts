/**
 * npm run bench:compare -- --help
 *
 * The suite against the BullMQ build of it (issue 14), like for like: same fixtures, same client, in turn.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMPARE_HELP, SIDE_LABEL, allAccounted, compareRuns, parseCompareArgs, range, renderMarkdown, renderSvg, type CompareOptions, type CompareRun, type Side } from './lib/compare.ts';
import { measure, openSession, servers, type Session } from './lib/session.ts';
import { PEER_SERVICES, startFixtures, stopProcess, type BenchFixtures } from './lib/suite.ts';
import { preparePeer, startPeer, type RunningPeer } from './lib/peer.ts';
import { REPO_ROOT } from '../tests/support/env.ts';

const log = (line: string) => process.stderr.write(`[compare] ${line}\n`);
const amqpUrl = process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672';
const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

/** Everything running that an interrupt must stop. */
const running = new Set<() => Promise<void>>();
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    log(`${signal}: stopping`);
    void Promise.allSettled([...running].map((stop) => stop())).finally(() => process.exit(130));
  });
}

/** A started side: a session to measure, and how to stop it. */
async function startSide(side: Side, fixtures: BenchFixtures, peerDir: string, o: CompareOptions): Promise<Session> {
  if (side === 'suite') {
    const session = await openSession({ amqpUrl, redisUrl, services: [...PEER_SERVICES], workers: 1, fixtureDelayMs: 0, logLevel: 'warn', fixtures, log });
    running.add(() => session.close());
    return session;
  }
  const prefix = `peerbq-${randomBytes(4).toString('hex')}`;
  const peer: RunningPeer = await startPeer({ dir: peerDir, port: o.peerPort, prefix, rdapUrl: fixtures.rdapUrl, dnsAddress: fixtures.dnsAddress, redisUrl });
  const stop = () => peer.stop();
  running.add(stop);
  return {
    apiUrl: peer.apiUrl,
    apiUrls: [peer.apiUrl],
    namespace: prefix, // no RabbitMQ queue has this name: the AMQP figures are off anyway
    own: false,
    watched: [
      ...Object.entries(peer.roles).map(([name, pid]) => ({ name, pid, kind: 'service' as const })),
      ...servers(amqpUrl, redisUrl),
      { name: 'fixtures', pid: fixtures.pid, kind: 'fixture' as const },
    ],
    jobsSubmitted: 0,
    async close() {
      running.delete(stop);
      await stop();
    },
  };
}

async function main(): Promise<number> {
  let o: CompareOptions | 'help';
  try {
    o = parseCompareArgs(process.argv.slice(2), join(REPO_ROOT, 'bench', 'results'));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  if (o === 'help') {
    process.stdout.write(COMPARE_HELP);
    return 0;
  }
  const peerDir = preparePeer(log);
  const fixtures = await startFixtures(0);
  running.add(() => stopProcess(fixtures));
  const runs: CompareRun[] = [];
  try {
    for (let round = 1; round <= o.rounds; round++) {
      for (const side of ['suite', 'bullmq'] as const) {
        log(`round ${round}: ${SIDE_LABEL[side]}`);
        const session = await startSide(side, fixtures, peerDir, o);
        try {
          for (const inflight of o.inflight) {
            const result = await measure(session, {
              mode: 'closed',
              jobs: o.jobs,
              inflight,
              rate: 0,
              warmup: o.warmup,
              services: [...PEER_SERVICES],
              target: '127.0.0.2',
              pollMs: 5,
              detector: 'sse',
              timeoutMs: 60_000,
              amqpStats: 'off',
              redisStats: true,
              redisUrl,
              config: { side, round, inflight, jobs: o.jobs, warmup: o.warmup, node: process.version },
              log,
            });
            runs.push({ side, round, inflight, result });
            log(`${SIDE_LABEL[side]} at ${inflight} in flight: ${result.ok ? 'OK' : `NOT OK (${result.problem})`}, ${result.jobsPerSec} jobs/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, other CPU ${result.otherCpuPct} % of a core`);
          }
        } finally {
          await session.close();
        }
      }
    }
  } finally {
    await stopProcess(fixtures);
  }
  const ok = allAccounted(runs);
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ ok, runs: runs.map((r) => ({ side: r.side, round: r.round, inflight: r.inflight, ...r.result })) })}\n`);
  } else {
    process.stdout.write(`${ok ? 'OK: every job of every run completed' : 'NOT OK: some jobs failed or were lost'}\n\n| | suite | BullMQ build | ratio |\n|---|---|---|---|\n`);
    for (const c of compareRuns(runs, o.inflight)) {
      process.stdout.write(`| ${c.inflight} in flight, ${c.metric.label} | ${range(c.suite, c.metric.unit)} | ${range(c.bullmq, c.metric.unit)} | ${c.ratio === null ? 'n/a' : `${c.ratio.toFixed(2)}x`} |\n`);
    }
  }
  if (o.outDir) {
    mkdirSync(o.outDir, { recursive: true });
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    const md = renderMarkdown(runs, { inflight: o.inflight, jobs: o.jobs, warmup: o.warmup, rounds: o.rounds, when: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC', commit });
    writeFileSync(join(o.outDir, 'compare.md'), md);
    writeFileSync(join(o.outDir, 'compare.svg'), renderSvg(runs, o.inflight));
    log(`wrote ${join(o.outDir, 'compare.md')} and compare.svg`);
  }
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  async (err) => {
    process.stderr.write(`bench:compare failed: ${(err as Error)?.stack ?? String(err)}\n`);
    await Promise.allSettled([...running].map((stop) => stop()));
    process.exit(1);
  },
);

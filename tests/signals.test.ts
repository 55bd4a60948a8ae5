// Issue 12: whatever signal reaches the process a user started (`npm start`, `npm run start:<name>`, or the
// supervisor itself), every service stops: none keeps running orphaned under PID 1, the API no longer listening.
// npm passes SIGTERM and SIGINT on to its script's shell (sh -c), not to the command the shell runs, and nothing at
// all for SIGHUP; the supervisor and the services watch their parent (EXIT_WITH_PARENT) for those cases.
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { cleanupNamespace, newNamespace } from './support/namespace.ts';
import { freePort, waitFor } from './support/processes.ts';
import { AMQP_URL, REDIS_URL, REPO_ROOT } from './support/env.ts';
import { descendants, stillRunning, type ProcInfo } from './support/proc-tree.ts';

const namespaces: string[] = [];
const started: ProcInfo[] = [];
afterEach(() => {
  // Whatever a failed test left behind.
  for (const p of started.splice(0)) if (stillRunning(p)) process.kill(p.pid, 'SIGKILL');
});
afterAll(async () => {
  for (const ns of namespaces) await cleanupNamespace(ns);
});

/** Starts `command args` in the repository with a loopback suite environment; resolves once `ready` all appeared. */
async function launch(command: string, args: string[], ready: string[]): Promise<{ top: ChildProcess; output: () => string; port: number }> {
  const ns = newNamespace('sig');
  namespaces.push(ns);
  const port = await freePort();
  const top = spawn(command, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, AMQP_URL, REDIS_URL, NAMESPACE: ns, API_HOST: '127.0.0.1', API_PORT: String(port), LOG_FORMAT: 'json', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  top.stdout!.on('data', (c: Buffer) => void (out += c.toString()));
  top.stderr!.on('data', (c: Buffer) => void (out += c.toString()));
  await waitFor(async () => (ready.every((r) => out.includes(r)) ? true : undefined), 60_000).catch((err: Error) => {
    top.kill('SIGKILL');
    throw new Error(`${err.message}\n${out.slice(-3000)}`);
  });
  return { top, output: () => out, port };
}

/** Every process under `top` (shells, the supervisor, the services), recorded so a failure cleans them up. */
function nodeTree(top: ChildProcess): ProcInfo[] {
  const tree = descendants(top.pid!);
  started.push(...tree);
  return tree;
}

/** The service processes among them (node running a service's main.js, not the shell that started it). */
const servicesIn = (tree: ProcInfo[]) => tree.filter((p) => /^(\S*\/)?node\s.*main\.js/.test(p.cmdline));
const supervisorIn = (tree: ProcInfo[]) => tree.filter((p) => /^(\S*\/)?node\s.*start\.mjs/.test(p.cmdline));

async function expectAllGone(tree: ProcInfo[], port: number | undefined, output: () => string) {
  await waitFor(async () => (tree.every((p) => !stillRunning(p)) ? true : undefined), 40_000).catch(() => undefined);
  const left = tree.filter((p) => stillRunning(p)).map((p) => `${p.pid} ${p.cmdline}`);
  expect(left, output().slice(-3000)).toEqual([]);
  if (port !== undefined) {
    const answer = await fetch(`http://127.0.0.1:${port}/health/live`).then((r) => r.status, () => 'refused');
    expect(answer).toBe('refused');
  }
}

describe('signals reach every service', () => {
  it('`npm start`, then SIGTERM to the npm process: the supervisor, the API and the saga all stop', async () => {
    const { top, output, port } = await launch('npm', ['start', '--', '--only', 'api,saga'], ['Server listening', 'saga ready']);
    const tree = nodeTree(top);
    expect(servicesIn(tree)).toHaveLength(2);
    expect(supervisorIn(tree)).toHaveLength(1);
    top.kill('SIGTERM');
    await expectAllGone(tree, port, output);
  });

  it('`npm start`, then SIGHUP to the npm process (which npm passes on to nobody): everything stops', async () => {
    const { top, output, port } = await launch('npm', ['start', '--', '--only', 'api,saga'], ['Server listening', 'saga ready']);
    const tree = nodeTree(top);
    top.kill('SIGHUP');
    await expectAllGone(tree, port, output);
  });

  it('`npm run start:ping`, then SIGTERM to the npm process: the worker stops', async () => {
    const { top, output } = await launch('npm', ['run', 'start:ping'], ['worker ready']);
    const tree = nodeTree(top);
    expect(servicesIn(tree)).toHaveLength(1);
    top.kill('SIGTERM');
    await expectAllGone(tree, undefined, output);
  });

  it.each(['SIGTERM', 'SIGINT', 'SIGHUP'] as const)('the supervisor itself, %s: every service stops and it exits 0', async (signal) => {
    const { top, output, port } = await launch(process.execPath, ['scripts/start.mjs', '--only', 'api,saga'], ['Server listening', 'saga ready']);
    const tree = nodeTree(top);
    const exited = new Promise<number | null>((resolve) => top.on('exit', (code) => resolve(code)));
    top.kill(signal);
    expect(await exited).toBe(0);
    await expectAllGone(tree, port, output);
  });

  it('the supervisor killed outright (SIGKILL): the services notice and stop by themselves', async () => {
    const { top, output, port } = await launch(process.execPath, ['scripts/start.mjs', '--only', 'api,saga'], ['Server listening', 'saga ready']);
    const tree = servicesIn(nodeTree(top));
    expect(tree).toHaveLength(2);
    top.kill('SIGKILL');
    // (Their last lines go nowhere: the supervisor that relayed them is gone.)
    await expectAllGone(tree, port, output);
  });
});

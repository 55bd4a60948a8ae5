import { startService, stopService, freePort, waitFor, type ServiceProcess } from './processes.ts';

/** A suite whose processes a test can SIGKILL and restart one by one. */
export class ChaosSuite {
  readonly processes: ServiceProcess[] = [];
  apiUrl = '';
  constructor(readonly env: Record<string, string>) {}

  static async start(namespace: string, names: string[], env: Record<string, string>): Promise<ChaosSuite> {
    const port = await freePort();
    const suite = new ChaosSuite({ NAMESPACE: namespace, API_HOST: '127.0.0.1', API_PORT: String(port), ...env });
    suite.apiUrl = `http://127.0.0.1:${port}`;
    for (const name of names) await suite.add(name);
    await waitFor(async () => ((await fetch(`${suite.apiUrl}/health/ready`).catch(() => undefined))?.status === 200 ? true : undefined), 30_000);
    return suite;
  }

  async add(name: string): Promise<ServiceProcess> {
    const p = await startService(name, this.env);
    this.processes.push(p);
    return p;
  }

  /** SIGKILL the first live process of that name (no shutdown, in-flight work lost mid-way). */
  async kill(name: string): Promise<void> {
    const p = this.processes.find((x) => x.name === name && x.child.exitCode === null && x.child.signalCode === null);
    if (!p) throw new Error(`no live ${name}`);
    p.child.kill('SIGKILL');
    await p.exited;
    this.processes.splice(this.processes.indexOf(p), 1);
  }

  live(name?: string): ServiceProcess[] {
    return this.processes.filter((p) => (name === undefined || p.name === name) && p.child.exitCode === null && p.child.signalCode === null);
  }

  async stop(): Promise<void> {
    await Promise.all(this.processes.map((p) => stopService(p)));
  }
}

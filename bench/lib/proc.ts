import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on every mainstream Linux). */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export interface CpuSample {
  /** utime + stime of the process itself, ms. */
  selfMs: number;
  /** cutime + cstime: children it has waited for (the ping worker's `ping` processes), ms. */
  childrenMs: number;
}

/** CPU times of one process from /proc/<pid>/stat; undefined once it has gone. */
export function readCpu(pid: number): CpuSample | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces and parentheses: split after its closing ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so field n is fields[n - 3].
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const cutime = Number(fields[13]);
  const cstime = Number(fields[14]);
  return { selfMs: ((utime + stime) * 1000) / CLK_TCK, childrenMs: ((cutime + cstime) * 1000) / CLK_TCK };
}

/** Parent of every live process, from /proc/<pid>/stat. */
function parentMap(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let text: string;
    try {
      text = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const ppid = Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
  }
  return children;
}

/**
 * CPU of a process's live descendants (their own time and their reaped children's), ms: e.g. the Ping
 * worker's long-lived launcher shell, which forks the pings and reaps them itself, so its time never reaches
 * the worker's cutime.
 */
export function readDescendantsCpu(pid: number, children = parentMap()): number {
  let total = 0;
  const stack = [...(children.get(pid) ?? [])];
  while (stack.length > 0) {
    const p = stack.pop()!;
    const c = readCpu(p);
    if (c) total += c.selfMs + c.childrenMs;
    stack.push(...(children.get(p) ?? []));
  }
  return total;
}

export interface MemSample {
  rssMb: number;
  /** VmHWM: the peak RSS over the process's whole life. */
  hwmMb: number;
}

export function readMem(pid: number): MemSample | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) / 1024 : 0;
  };
  return { rssMb: kb('VmRSS'), hwmMb: kb('VmHWM') };
}

/** Whole-machine CPU (all cores) from /proc/stat: busy and total jiffies. */
export function readMachineCpu(): { busy: number; total: number; cores: number } {
  const text = readFileSync('/proc/stat', 'utf8');
  const first = text.split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = first.reduce((a, b) => a + b, 0);
  const idle = (first[3] ?? 0) + (first[4] ?? 0); // idle + iowait
  const cores = text.split('\n').filter((l) => /^cpu\d+ /.test(l)).length;
  return { busy: total - idle, total, cores };
}

/** pids of processes whose name is exactly `name` (pgrep -x), oldest first (the server, not a CLI started later); empty when none. */
export function pgrep(name: string): number[] {
  try {
    const pids = execFileSync('pgrep', ['-x', name], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
    const started = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[19] ?? 0);
    return pids.sort((a, b) => started(a) - started(b));
  } catch {
    return [];
  }
}

/**
 * The process listening on a loopback TCP port (from /proc/net/tcp{,6} and the owners' /proc/<pid>/fd), or
 * undefined when none is found (not this machine's, or no permission to read the owner's fds). How the bench finds
 * RabbitMQ and Redis: by name alone it could pick another beam.smp or redis-server started by a test.
 */
export function listeningPid(port: number): number | undefined {
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is <hex ip>:<hex port>; st 0A is LISTEN; field 9 is the socket's inode.
      if (f[3] === '0A' && parseInt(f[1]?.split(':')[1] ?? '', 16) === port && f[9]) inodes.add(`socket:[${f[9]}]`);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (inodes.has(readlinkSync(`/proc/${entry}/fd/${fd}`))) return Number(entry);
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}

export interface Watched {
  /** Label in reports: 'api', 'worker-rdap#2', 'rabbitmq', 'redis'. */
  name: string;
  pid: number;
  kind: 'service' | 'server' | 'fixture' | 'client';
}

export interface ProcessUsage {
  name: string;
  pid: number;
  kind: Watched['kind'];
  cpuMs: number;
  childCpuMs: number;
  /** Highest RSS sampled during the measurement. */
  peakRssMb: number;
  /** VmHWM at the end (whole life of the process, start-up and warm-up included). */
  hwmMb: number;
}

/**
 * Measures CPU (delta between start and stop) and samples RSS every `intervalMs` for a set of processes.
 * Sampling runs on a timer in the bench process; it costs a few /proc reads per tick.
 */
export class ProcessMeter {
  private readonly start = new Map<number, CpuSample>();
  private readonly peak = new Map<number, number>();
  private timer?: NodeJS.Timeout;
  private machineStart = readMachineCpu();
  private clientStart = process.cpuUsage();
  private clientPeakRss = 0;

  constructor(private readonly watched: Watched[], private readonly intervalMs = 200) {}

  begin(): void {
    this.machineStart = readMachineCpu();
    this.clientStart = process.cpuUsage();
    this.clientPeakRss = process.memoryUsage.rss();
    const tree = parentMap();
    for (const w of this.watched) {
      const c = readCpu(w.pid);
      if (c) this.start.set(w.pid, { ...c, childrenMs: c.childrenMs + readDescendantsCpu(w.pid, tree) });
      this.peak.set(w.pid, readMem(w.pid)?.rssMb ?? 0);
    }
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  private sample(): void {
    for (const w of this.watched) {
      const m = readMem(w.pid);
      if (m && m.rssMb > (this.peak.get(w.pid) ?? 0)) this.peak.set(w.pid, m.rssMb);
    }
    this.clientPeakRss = Math.max(this.clientPeakRss, process.memoryUsage.rss());
  }

  end(): { processes: ProcessUsage[]; client: { cpuMs: number; peakRssMb: number }; machine: { busyPct: number; cores: number } } {
    this.sample();
    if (this.timer) clearInterval(this.timer);
    const tree = parentMap();
    const processes = this.watched.map((w): ProcessUsage => {
      const s = this.start.get(w.pid);
      const raw = readCpu(w.pid);
      const e = raw && { ...raw, childrenMs: raw.childrenMs + readDescendantsCpu(w.pid, tree) };
      return {
        name: w.name,
        pid: w.pid,
        kind: w.kind,
        cpuMs: s && e ? e.selfMs - s.selfMs : NaN,
        childCpuMs: s && e ? e.childrenMs - s.childrenMs : NaN,
        peakRssMb: this.peak.get(w.pid) ?? NaN,
        hwmMb: readMem(w.pid)?.hwmMb ?? NaN,
      };
    });
    const cu = process.cpuUsage(this.clientStart);
    const m = readMachineCpu();
    const busyPct = m.total > this.machineStart.total ? (100 * (m.busy - this.machineStart.busy)) / (m.total - this.machineStart.total) : NaN;
    return {
      processes,
      client: { cpuMs: (cu.user + cu.system) / 1000, peakRssMb: this.clientPeakRss / (1024 * 1024) },
      machine: { busyPct, cores: m.cores },
    };
  }
}

/**
 * Waits until the machine is quiet (other work skews every figure on a shared 2-core box): until the busy
 * share of all cores stays under `maxBusyPct` for 3 consecutive seconds, or `timeoutS` has passed.
 * Returns the last second's busy share.
 */
export async function waitForIdle(timeoutS: number, maxBusyPct = 25, log?: (line: string) => void): Promise<number> {
  const deadline = Date.now() + timeoutS * 1000;
  let quiet = 0;
  let busy = NaN;
  let prev = readMachineCpu();
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1000));
    const next = readMachineCpu();
    busy = (100 * (next.busy - prev.busy)) / Math.max(1, next.total - prev.total);
    prev = next;
    quiet = busy < maxBusyPct ? quiet + 1 : 0;
    if (quiet >= 3) return busy;
  }
  log?.(`machine still busy (${Math.round(busy)} % of all cores) after ${timeoutS} s; measuring anyway (see "other CPU")`);
  return busy;
}

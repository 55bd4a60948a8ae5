import { readFileSync, readdirSync } from 'node:fs';

/** A process as /proc shows it: its parent and its start time (so a reused pid is not taken for it). */
export interface ProcInfo {
  pid: number;
  ppid: number;
  startTime: string;
  state: string;
  cmdline: string;
}

export function procInfo(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: parse after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    } catch {
      // gone meanwhile
    }
    return { pid, state: fields[0]!, ppid: Number(fields[1]), startTime: fields[19]!, cmdline };
  } catch {
    return undefined;
  }
}

/** Every live process whose ancestry includes `root` (root excluded). */
export function descendants(root: number): ProcInfo[] {
  const all = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map((d) => procInfo(Number(d)))
    .filter((p): p is ProcInfo => p !== undefined);
  const children = new Map<number, ProcInfo[]>();
  for (const p of all) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const out: ProcInfo[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const c of children.get(queue.shift()!) ?? []) {
      out.push(c);
      queue.push(c.pid);
    }
  }
  return out;
}

/** Whether the process is still running (not gone, not a zombie, and the same process as `p`, not a reused pid). */
export function stillRunning(p: ProcInfo): boolean {
  const now = procInfo(p.pid);
  return now !== undefined && now.startTime === p.startTime && now.state !== 'Z';
}

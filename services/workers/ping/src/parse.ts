/** Parsing of `ping` output: iputils (Linux), with BusyBox's variant of the same lines accepted too. */

export interface PingProbe {
  seq: number;
  ttl?: number;
  timeMs: number;
}

export interface RttStats {
  minMs: number;
  avgMs: number;
  maxMs: number;
  mdevMs?: number;
}

export interface PingSummary {
  transmitted: number;
  received: number;
  packetLossPercent: number;
  duplicates?: number;
  /** ICMP errors reported instead of replies, e.g. 'Destination Host Unreachable'. */
  errors?: string[];
  rtt?: RttStats;
  probes: PingProbe[];
}

const PROBE_RE = /bytes from .*?: (?:icmp_)?seq=(\d+)(?:\s+ttl=(\d+))?\s+time[=<]([\d.]+)\s*ms/;
const ERROR_RE = /^From \S+(?: \([^)]*\))?:? (?:icmp_)?seq=\d+ (.+)$/;
const STATS_RE = /(\d+) packets transmitted, (\d+) (?:packets )?received/;
const LOSS_RE = /([\d.]+)% packet loss/;
const DUP_RE = /\+(\d+) duplicates/;
const RTT_RE = /(?:rtt|round-trip) min\/avg\/max(?:\/(?:mdev|stddev))? = ([\d.]+)\/([\d.]+)\/([\d.]+)(?:\/([\d.]+))? ms/;

/** The summary of one ping run; undefined when the output has no statistics (ping failed to start). */
export function parsePingOutput(output: string): PingSummary | undefined {
  const lines = output.split(/\r?\n/);
  const statsLine = lines.find((l) => STATS_RE.test(l));
  if (!statsLine) return undefined;
  const [, transmitted, received] = STATS_RE.exec(statsLine)!.map(Number);
  const probes = parseProbes(lines);
  const errors = [...new Set(lines.map((l) => ERROR_RE.exec(l)?.[1]?.trim()).filter((e): e is string => !!e))];
  const duplicates = Number(DUP_RE.exec(statsLine)?.[1] ?? 0);
  const loss = LOSS_RE.exec(statsLine);
  const summary: PingSummary = {
    transmitted: transmitted!,
    received: received!,
    packetLossPercent: loss ? round(Number(loss[1])) : lossPercent(transmitted!, received!),
    probes,
  };
  if (duplicates > 0) summary.duplicates = duplicates;
  if (errors.length > 0) summary.errors = errors;
  const rtt = parseRtt(output) ?? rttOf(probes);
  if (rtt) summary.rtt = rtt;
  return summary;
}

function parseProbes(lines: string[]): PingProbe[] {
  const bySeq = new Map<number, PingProbe>();
  for (const line of lines) {
    if (line.includes('(DUP!)')) continue;
    const m = PROBE_RE.exec(line);
    if (!m) continue;
    const probe: PingProbe = { seq: Number(m[1]), timeMs: Number(m[3]) };
    if (m[2] !== undefined) probe.ttl = Number(m[2]);
    if (!bySeq.has(probe.seq)) bySeq.set(probe.seq, probe);
  }
  return [...bySeq.values()];
}

function parseRtt(output: string): RttStats | undefined {
  const m = RTT_RE.exec(output);
  if (!m) return undefined;
  const rtt: RttStats = { minMs: Number(m[1]), avgMs: Number(m[2]), maxMs: Number(m[3]) };
  if (m[4] !== undefined) rtt.mdevMs = Number(m[4]);
  return rtt;
}

/** Min/avg/max of measured times, for outputs without a summary line (and for TCP probes). */
export function rttOf(probes: Array<{ timeMs: number }>): RttStats | undefined {
  if (probes.length === 0) return undefined;
  const times = probes.map((p) => p.timeMs);
  const avg = times.reduce((a, b) => a + b, 0) / times.length;
  return { minMs: round(Math.min(...times)), avgMs: round(avg), maxMs: round(Math.max(...times)) };
}

/** rttOf plus the mean deviation as iputils computes it: sqrt(mean(t²) - mean(t)²). */
export function rttWithMdev(probes: Array<{ timeMs: number }>): RttStats | undefined {
  const rtt = rttOf(probes);
  if (!rtt) return undefined;
  const times = probes.map((p) => p.timeMs);
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  const meanOfSquares = times.reduce((a, b) => a + b * b, 0) / times.length;
  return { ...rtt, mdevMs: round(Math.sqrt(Math.max(0, meanOfSquares - mean * mean))) };
}

export function lossPercent(transmitted: number, received: number): number {
  return transmitted === 0 ? 100 : round(((transmitted - received) * 100) / transmitted);
}

/** True when the system refuses to let this process send ICMP echo (no raw socket, no ping group, firewall). */
export function icmpNotPermitted(output: string): boolean {
  return /operation not permitted|permission denied|missing cap_net_raw|lacking privilege|socket: .*not permitted/i.test(output);
}

const round = (v: number) => Math.round(v * 1000) / 1000;

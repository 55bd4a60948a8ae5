import { execFile } from 'node:child_process';
import { Type } from '@sinclair/typebox';
import type { Config } from '@lookup/config';
import { ServiceType, targetPolicyFromConfig, transientError, type TargetPolicy } from '@lookup/contracts';
import type { Logger } from '@lookup/logging';
import { assertAddressAllowed, resolverSettings, resolveTarget, type ResolvedTarget, type ResolverSettings } from '@lookup/dns';
import { defineLookupService, type LookupContext, type LookupData, type LookupService } from '@lookup/worker-kit';
import { icmpNotPermitted, lossPercent, parsePingOutput, rttOf } from './parse.ts';
import { answered, tcpProbe, type TcpOutcome, type TcpProbeResult } from './tcp-probe.ts';
import { CommandLauncher } from './launcher.ts';
import { loadNativeIcmp } from './icmp-native.ts';
import { IcmpPinger, PingerError, PingerErrors, type OpenIcmpSocket } from './pinger.ts';

export interface PingOptions {
  /** The ping executable (iputils or BusyBox); 'ping' on PATH by default. */
  pingCommand?: string;
  /** Ports for the TCP fallback, tried in order until one answers. */
  tcpPorts?: number[];
  /** Loads the in-process ICMP socket (the native addon by default); throws when it is not available. Tests
   *  inject a fake socket, or a loader that throws to simulate a missing addon. */
  loadIcmpSocket?: () => OpenIcmpSocket;
}

interface PingSettings {
  count: number;
  timeoutMs: number;
  command: string;
  ports: number[];
  launcher?: CommandLauncher;
  /** The in-process ICMP engine, when in use. */
  pinger?: IcmpPinger;
  /** With PING_ENGINE=auto, a family whose socket does not open goes to the system ping instead. */
  systemFallback: boolean;
  logger: Logger;
  /** Families already reported as having no socket (logged once each). */
  socketlessFamilies: Set<4 | 6>;
  /** The target policy every address passes before a probe is sent (ALLOW_PRIVATE_TARGETS, TARGET_*_CIDRS). */
  targetPolicy: TargetPolicy;
}

const Count = (description: string) => Type.Integer({ minimum: 0, description });
const Ms = Type.Number({ minimum: 0 });
const TCP_OUTCOMES = ['open', 'refused', 'timeout', 'unreachable', 'error'] as const satisfies readonly TcpOutcome[];

/**
 * Ping's result data. `method` says how the address was probed: 'icmp' (echo requests; `probes` are the replies),
 * or 'tcp' when ICMP is not available (`icmpUnavailable` says why; `probes` are the connect attempts, `port` the
 * port that answered or was tried first).
 */
export const PingDataSchema = Type.Object(
  {
    ip: Type.String({ description: 'The address probed (for a domain, its first A/AAAA address)' }),
    resolvedFrom: Type.Optional(Type.String({ description: 'The domain that was resolved (domain targets only)' })),
    resolvedAddresses: Type.Optional(Type.Array(Type.String(), { description: 'Every address the domain resolved to' })),
    method: Type.Union([Type.Literal('icmp'), Type.Literal('tcp')]),
    reachable: Type.Boolean({ description: 'At least one reply (ICMP), or a connection accepted or refused (TCP)' }),
    transmitted: Count('Probes sent'),
    received: Count('Replies received'),
    packetLossPercent: Type.Number({ minimum: 0, maximum: 100 }),
    duplicates: Type.Optional(Count('Duplicate replies (ICMP)')),
    errors: Type.Optional(Type.Array(Type.String(), { description: "ICMP errors reported instead of replies, e.g. 'Destination Host Unreachable'" })),
    error: Type.Optional(Type.String({ description: 'Why no probe could be sent (e.g. network unreachable)' })),
    rtt: Type.Union(
      [Type.Object({ minMs: Ms, avgMs: Ms, maxMs: Ms, mdevMs: Type.Optional(Ms) }, { additionalProperties: false }), Type.Null()],
      { description: 'Round-trip times of the replies; null without replies' },
    ),
    probes: Type.Array(
      Type.Object(
        {
          seq: Type.Integer({ minimum: 0 }),
          ttl: Type.Optional(Type.Integer({ minimum: 0, description: 'ICMP: TTL of the reply' })),
          timeMs: Type.Optional(Type.Number({ minimum: 0, description: 'Round-trip (ICMP) or connect (TCP) time; absent for a TCP probe not answered' })),
          port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: 'TCP: the port tried' })),
          outcome: Type.Optional(
            Type.Union(TCP_OUTCOMES.map((o) => Type.Literal(o)), {
              description: 'TCP: open (accepted) and refused (reset) mean the host answered',
            }),
          ),
          error: Type.Optional(Type.String({ description: 'TCP: the socket error' })),
        },
        { additionalProperties: false },
      ),
      { description: 'ICMP: the replies, by sequence number; TCP: every connect attempt' },
    ),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: 'TCP: the port that answered (else the first tried)' })),
    icmpUnavailable: Type.Optional(Type.String({ description: 'TCP: why ICMP was not used' })),
  },
  { additionalProperties: false, description: 'Ping: reachability and round-trip times of an address' },
);

const PROBE_INTERVAL_S = 0.2; // the smallest interval iputils allows without privileges

/**
 * Ping: ICMP echo from an in-process ICMP socket shared by every lookup of the worker (native addon), else
 * through the system ping; a TCP connect probe where ICMP is not permitted.
 */
export function createPingLookup(options: PingOptions = {}): LookupService {
  const command = options.pingCommand ?? 'ping';
  const ports = options.tcpPorts ?? [443, 80];
  return defineLookupService({
    service: ServiceType.Ping,
    dataSchema: PingDataSchema,
    // The TCP fallback may try every port once, then one port per remaining probe.
    timeoutMs: (config) => Math.max(config.lookupTimeoutMs, (config.pingCount + ports.length) * config.pingTimeoutMs + 2000),
    async setup({ config, logger }) {
      const launcher = new CommandLauncher();
      const pinger = chooseEngine(config, options.loadIcmpSocket ?? loadNativeIcmp, command, logger);
      const settings: PingSettings = {
        count: config.pingCount,
        timeoutMs: config.pingTimeoutMs,
        command,
        ports,
        launcher,
        pinger,
        systemFallback: config.pingEngine === 'auto',
        logger,
        socketlessFamilies: new Set(),
        targetPolicy: targetPolicyFromConfig(config),
      };
      const dns = resolverSettings(config.dnsServers, 2 * config.pingTimeoutMs); // a probe's timeout per try
      return {
        lookup: (ctx) => pingTarget(ctx, settings, dns),
        close: () => {
          pinger?.close();
          launcher.close();
        },
      };
    },
  });
}

/**
 * PING_ENGINE: 'system' runs the system ping; 'socket' needs the in-process socket (start-up fails without
 * it); 'auto' uses the socket when the addon loads and an IPv4 socket opens, else the system ping. The IPv4
 * socket is opened here, to decide; the IPv6 one on the first IPv6 target. Logs the choice and why, once.
 */
function chooseEngine(config: Readonly<Config>, load: () => OpenIcmpSocket, command: string, logger: Logger): IcmpPinger | undefined {
  if (config.pingEngine === 'system') {
    logger.info({ pingEngine: 'system', reason: 'PING_ENGINE=system' }, `ping engine: system ${command} (PING_ENGINE=system)`);
    return undefined;
  }
  let pinger: IcmpPinger | undefined;
  try {
    pinger = new IcmpPinger(load());
    const kind = pinger.open(4);
    const why =
      kind === 'dgram'
        ? 'unprivileged ICMP datagram socket (the process group is in net.ipv4.ping_group_range)'
        : 'raw ICMP socket (CAP_NET_RAW; the process group is not in net.ipv4.ping_group_range)';
    logger.info({ pingEngine: 'socket', socket: kind, reason: why }, `ping engine: in-process ${why}`);
    return pinger;
  } catch (err) {
    pinger?.close();
    const reason = (err as Error).message;
    if (config.pingEngine === 'socket') throw new Error(`PING_ENGINE=socket, but ${reason}`, { cause: err });
    logger.info({ pingEngine: 'system', reason }, `ping engine: system ${command}, because the in-process ICMP socket is unavailable: ${reason}`);
    return undefined;
  }
}

export const pingLookup = createPingLookup();

async function pingTarget(ctx: LookupContext, settings: PingSettings, dns: ResolverSettings): Promise<LookupData> {
  // Every resolved address is checked by resolveTarget (a domain with any refused address fails).
  const target = await resolveTarget(ctx, dns, settings.targetPolicy);
  const base = {
    ip: target.ip,
    ...(target.resolvedFrom ? { resolvedFrom: target.resolvedFrom, resolvedAddresses: target.resolvedAddresses } : {}),
  };
  const icmp = settings.pinger ? await runSocket(target, settings, ctx.signal) : await runIcmp(target, settings, ctx.signal);
  if ('data' in icmp) return { ...base, ...icmp.data };
  ctx.logger.debug({ reason: icmp.unavailable }, 'ICMP not available; probing with TCP connect');
  return { ...base, ...(await runTcp(target.ip, settings, ctx.signal)), icmpUnavailable: icmp.unavailable };
}

type IcmpOutcome = { data: LookupData } | { unavailable: string };

/** ICMP echo through the worker's shared in-process socket. */
async function runSocket(target: ResolvedTarget, s: PingSettings, signal: AbortSignal): Promise<IcmpOutcome> {
  try {
    const options = { count: s.count, timeoutMs: s.timeoutMs, intervalMs: PROBE_INTERVAL_S * 1000, signal };
    const summary = await s.pinger!.ping(target.ip, target.family, options);
    return { data: { method: 'icmp', reachable: summary.received > 0, ...summary, rtt: summary.rtt ?? null } };
  } catch (err) {
    if (signal.aborted) throw transientError('PING_ABORTED', 'ping was cancelled', err);
    const code = err instanceof PingerError ? err.code : undefined;
    if (code === PingerErrors.SOCKET_UNAVAILABLE) {
      if (!s.socketlessFamilies.has(target.family)) {
        s.socketlessFamilies.add(target.family);
        const next = s.systemFallback ? `system ${s.command}` : 'TCP connect probes (PING_ENGINE=socket)';
        s.logger.warn({ family: target.family, reason: (err as Error).message }, `IPv${target.family} targets use ${next}: ${(err as Error).message}`);
      }
      return s.systemFallback ? runIcmp(target, s, signal) : { unavailable: (err as Error).message };
    }
    if (code === PingerErrors.NOT_PERMITTED) return { unavailable: (err as Error).message };
    throw transientError('PING_FAILED', `ICMP echo failed: ${(err as Error).message}`, err);
  }
}

async function runIcmp(target: ResolvedTarget, s: PingSettings, signal: AbortSignal): Promise<IcmpOutcome> {
  // Whole seconds: older iputils and BusyBox read -W as an integer.
  const waitS = Math.max(1, Math.ceil(s.timeoutMs / 1000));
  const args = ['-n', '-c', String(s.count), '-W', String(waitS), '-i', String(PROBE_INTERVAL_S)];
  if (target.family === 6) args.push('-6');
  args.push(target.ip);
  const budgetMs = (s.count - 1) * PROBE_INTERVAL_S * 1000 + waitS * 1000 + 2000;
  const run = s.launcher && CommandLauncher.accepts([s.command, ...args])
    ? await launchPing(s.launcher, s.command, args, signal, budgetMs)
    : await execPing(s.command, args, signal, budgetMs);
  if ('missing' in run) return { unavailable: run.missing };
  const output = `${run.stdout}\n${run.stderr}`;
  if (icmpNotPermitted(output)) return { unavailable: firstLine(run.stderr) || 'ICMP is not permitted' };
  const summary = parsePingOutput(run.stdout);
  if (summary) return { data: { method: 'icmp', reachable: summary.received > 0, ...summary, rtt: summary.rtt ?? null } };
  if (/network is unreachable|no route to host/i.test(output)) {
    const data = { method: 'icmp', reachable: false, transmitted: 0, received: 0, packetLossPercent: 100, rtt: null, probes: [] };
    return { data: { ...data, error: firstLine(run.stderr) } };
  }
  throw transientError('PING_FAILED', `ping exited with code ${run.code}: ${firstLine(run.stderr) || 'no output'}`);
}

type PingRun = { code: number; stdout: string; stderr: string } | { missing: string };

/** Runs ping through the worker's long-lived launcher shell (no fork of this process per lookup). */
async function launchPing(launcher: CommandLauncher, command: string, args: string[], signal: AbortSignal, timeoutMs: number): Promise<PingRun> {
  let result;
  try {
    result = await launcher.run([command, ...args], signal, timeoutMs);
  } catch (err) {
    if (signal.aborted) throw transientError('PING_ABORTED', 'ping was cancelled', err);
    if ((err as { code?: string }).code === 'ETIMEDOUT') throw transientError('PING_TIMEOUT', `ping did not finish within ${timeoutMs} ms`, err);
    throw transientError('PING_FAILED', `ping could not run: ${(err as Error).message}`, err);
  }
  // The shell's codes for a command it cannot find (127) or execute (126).
  if (result.code === 127 || result.code === 126) return { missing: `${command} cannot be run (${result.code === 127 ? 'ENOENT' : 'EACCES'})` };
  // stdout and stderr arrive together; both parsers look for their own lines.
  return { code: result.code, stdout: result.output, stderr: result.code === 0 ? '' : result.output };
}

/** Runs ping; resolves with its output whatever its exit code (1 means no replies, which is a result). */
function execPing(command: string, args: string[], signal: AbortSignal, timeoutMs: number): Promise<PingRun> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, LC_ALL: 'C' };
    execFile(command, args, { signal, timeout: timeoutMs, env, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolve({ code: 0, stdout, stderr });
      if (typeof err.code === 'number') return resolve({ code: err.code, stdout, stderr });
      if (err.code === 'ENOENT' || err.code === 'EACCES') return resolve({ missing: `${command} cannot be run (${err.code})` });
      if (signal.aborted) return reject(transientError('PING_ABORTED', 'ping was cancelled', err));
      if (err.killed) return reject(transientError('PING_TIMEOUT', `ping did not finish within ${timeoutMs} ms`, err));
      reject(transientError('PING_FAILED', `ping could not run: ${err.message}`, err));
    });
  });
}

async function runTcp(ip: string, s: PingSettings, signal: AbortSignal): Promise<LookupData> {
  assertAddressAllowed(s.targetPolicy, ip); // the fallback connects: it checks the very address it connects to
  const probes: Array<TcpProbeResult & { seq: number }> = [];
  let ports = s.ports;
  for (let seq = 1; seq <= s.count; seq += 1) {
    const result = await probePorts(ip, ports, s.timeoutMs, signal);
    probes.push({ seq, ...result });
    ports = [result.port]; // later probes reuse the port that answered (or the last one tried)
  }
  const replies = probes.filter(answered) as Array<TcpProbeResult & { timeMs: number }>;
  return {
    method: 'tcp',
    port: replies[0]?.port ?? s.ports[0],
    reachable: replies.length > 0,
    transmitted: probes.length,
    received: replies.length,
    packetLossPercent: lossPercent(probes.length, replies.length),
    rtt: rttOf(replies) ?? null,
    probes,
  };
}

async function probePorts(ip: string, ports: number[], timeoutMs: number, signal: AbortSignal): Promise<TcpProbeResult> {
  let last: TcpProbeResult | undefined;
  for (const port of ports) {
    try {
      last = await tcpProbe(ip, port, timeoutMs, signal);
    } catch (err) {
      throw transientError('PING_ABORTED', 'TCP probe was cancelled', err);
    }
    if (answered(last)) return last;
  }
  return last!;
}

const firstLine = (s: string) => s.split('\n').find((l) => l.trim() !== '')?.trim() ?? '';

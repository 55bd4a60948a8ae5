import net from 'node:net';
import { performance } from 'node:perf_hooks';

/** open: the port accepted; refused: the host answered with a reset (so it is up); the rest: no answer. */
export type TcpOutcome = 'open' | 'refused' | 'timeout' | 'unreachable' | 'error';

export interface TcpProbeResult {
  port: number;
  outcome: TcpOutcome;
  /** Time until the connection was accepted or refused. */
  timeMs?: number;
  error?: string;
}

export const answered = (r: TcpProbeResult) => r.outcome === 'open' || r.outcome === 'refused';

/** One TCP connect attempt; never rejects except when `signal` aborts. */
export function tcpProbe(ip: string, port: number, timeoutMs: number, signal: AbortSignal): Promise<TcpProbeResult> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const started = performance.now();
    const socket = net.connect({ host: ip, port });
    const finish = (result: Omit<TcpProbeResult, 'port'>) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve({ port, ...result });
    };
    const elapsed = () => Math.round((performance.now() - started) * 1000) / 1000;
    const onAbort = () => {
      clearTimeout(timer);
      socket.destroy();
      reject(signal.reason);
    };
    const timer = setTimeout(() => finish({ outcome: 'timeout' }), timeoutMs);
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => finish({ outcome: 'open', timeMs: elapsed() }));
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') return finish({ outcome: 'refused', timeMs: elapsed() });
      const unreachable = ['EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL'].includes(err.code ?? '');
      finish({ outcome: unreachable ? 'unreachable' : 'error', error: err.code ?? err.message });
    });
  });
}

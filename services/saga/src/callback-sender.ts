import { isIP } from 'node:net';
import { Agent, request, type Dispatcher } from 'undici';
import { errorMessage, type TargetPolicy } from '@lookup/contracts';
import { checkedLookup, type ResolverSettings } from '@lookup/dns';

export interface CallbackSenderOptions {
  policy: TargetPolicy;
  /** Resolver for callback hosts (DNS_SERVERS). */
  dns: ResolverSettings;
  /** CALLBACK_TIMEOUT_MS: connect, send and answer. */
  timeoutMs: number;
}

export interface SendOutcome {
  /** The receiver's HTTP status; null when there was no answer. */
  statusCode: number | null;
  /** 2xx. */
  ok: boolean;
  error: string | null;
  /** False when another attempt cannot help (the URL's address is refused by the target policy). */
  retryable: boolean;
  durationMs: number;
}

class CallbackRefused extends Error {
  readonly code = 'CALLBACK_REFUSED';
}

/** How much of a receiver's answer is read (and ignored). */
const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * POSTs completion callbacks. Every connection passes the target policy after resolution (checkedLookup: every
 * address of the host must be allowed, and the socket gets exactly those); an IP literal is checked before
 * connecting. Redirects are not followed: a 3xx is a failed attempt.
 */
export function createCallbackSender(options: CallbackSenderOptions) {
  const refuse = (hostname: string, ip: string, verdict: { rule: string; message: string }) =>
    new CallbackRefused(`${hostname === ip ? ip : `${hostname} resolves to ${ip}, which`} is refused by the target policy (rule '${verdict.rule}'): ${verdict.message}`);
  const agent: Dispatcher = new Agent({ keepAliveTimeout: 5_000, connections: 16, connect: { lookup: checkedLookup(options.policy, options.dns, refuse) } });

  async function send(url: string, body: string, headers: Record<string, string>): Promise<SendOutcome> {
    const started = performance.now();
    const elapsed = () => Math.round((performance.now() - started) * 100) / 100;
    try {
      const host = new URL(url).hostname.replace(/^\[(.*)\]$/, '$1');
      if (isIP(host)) {
        const verdict = options.policy.checkAddress(host);
        if (!verdict.allowed) throw refuse(host, host, verdict);
      }
      const res = await request(url, {
        dispatcher: agent,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'distributed-lookup-callbacks', ...headers },
        body,
        signal: AbortSignal.timeout(options.timeoutMs),
      });
      await res.body.dump({ limit: MAX_ANSWER_BYTES }).catch(() => undefined);
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      return { statusCode: res.statusCode, ok, error: ok ? null : `the receiver answered ${res.statusCode}`, retryable: true, durationMs: elapsed() };
    } catch (err) {
      const refused = err instanceof CallbackRefused || (err as { cause?: unknown })?.cause instanceof CallbackRefused;
      const cause = (err as { cause?: unknown })?.cause;
      const message = refused && cause instanceof CallbackRefused ? cause.message : errorMessage(err);
      return { statusCode: null, ok: false, error: message.slice(0, 500), retryable: !refused, durationMs: elapsed() };
    }
  }

  return { send, close: () => agent.close() };
}
export type CallbackSender = ReturnType<typeof createCallbackSender>;

/**
 * Exponential backoff with "equal jitter" (half the wait fixed, half random): the wait after `n` failures
 * (n = 0, 1, ...) is drawn from [cap / 2, cap] with cap = min(maxMs, baseMs * 2^n). The one formula behind every
 * retry in the suite: broker and RPC reconnects, Redis reconnects and lookup retries.
 */
export function equalJitterBackoff(n: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(0, n), 30));
  return Math.round(cap / 2 + random() * (cap / 2));
}

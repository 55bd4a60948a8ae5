import type { Config } from '@lookup/config';

/** Whether the API listens on a loopback address only (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Settings that are unsafe in front of strangers; main.ts logs each as a warning at start. */
export function startupWarnings(config: Readonly<Config>): string[] {
  const warnings: string[] = [];
  if (config.allowPrivateTargets && !isLoopbackHost(config.apiHost)) {
    warnings.push(
      `ALLOW_PRIVATE_TARGETS=true while the API listens on ${config.apiHost} (not a loopback address): anyone who can reach ` +
        'it can make the workers ping, resolve and fetch private and internal addresses. Use it for development and tests only.',
    );
  }
  if (config.trustProxy === true) {
    warnings.push(
      'TRUST_PROXY=true trusts every hop of X-Forwarded-For: any client can choose the address its quota is counted ' +
        'against. Set TRUST_PROXY to the proxy addresses (or CIDRs) instead, or to the number of proxies in front of the API.',
    );
  }
  return warnings;
}

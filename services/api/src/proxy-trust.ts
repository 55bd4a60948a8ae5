import type { Config } from '@lookup/config';

/** Fastify's view of who may set X-Forwarded-For: (address of a hop, its distance from us) => trusted. */
export type TrustProxy = boolean | string[] | ((address: string, hop: number) => boolean);

/**
 * TRUST_PROXY as Fastify's `trustProxy`. A list of proxy addresses/CIDRs goes through as it is (the safe form:
 * only those peers may set X-Forwarded-For). A hop count n trusts the n nearest hops whatever their address
 * (Express's meaning; Fastify 5.12 ignores a bare number, so it is passed as a function): right only when
 * nothing but those proxies can reach the API. `true` trusts every hop, so any client can pick its own
 * address by sending X-Forwarded-For; it is accepted for compatibility and warned about at start.
 */
export function fastifyTrustProxy(trustProxy: Config['trustProxy']): TrustProxy {
  if (typeof trustProxy === 'number') {
    const hops = trustProxy;
    return hops > 0 ? (_address: string, hop: number) => hop < hops : false;
  }
  return Array.isArray(trustProxy) ? [...trustProxy] : trustProxy;
}

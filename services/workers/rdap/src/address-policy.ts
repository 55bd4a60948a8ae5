import type { Config } from '@lookup/config';
import { addressScope } from '@lookup/contracts';

/**
 * The target policy (SSRF guard) as the RDAP worker uses it: may this process open a connection to `ip`?
 * The shape of @lookup/contracts' TargetPolicy, declared here structurally so this worker does not depend on
 * where that policy is built.
 */
export type PolicyVerdict = { allowed: true } | { allowed: false; rule: string; message: string };

export interface TargetPolicy {
  checkAddress(ip: string): PolicyVerdict;
}

/** The one place the RDAP worker builds its policy. */
export function rdapTargetPolicy(config: Pick<Config, 'allowPrivateTargets'>): TargetPolicy {
  // LEAD: replace with createTargetPolicy({ allowPrivate: config.allowPrivateTargets, allow: ..., deny: ... })
  return {
    checkAddress(ip) {
      const scope = addressScope(ip);
      if (scope === 'public' || config.allowPrivateTargets) return { allowed: true };
      return {
        allowed: false,
        rule: scope,
        message: `${ip} is a ${scope} address (ALLOW_PRIVATE_TARGETS is not set)`,
      };
    },
  };
}

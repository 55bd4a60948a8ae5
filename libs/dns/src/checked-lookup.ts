import type { LookupAddress, LookupOptions } from 'node:dns';
import type { PolicyVerdict, TargetPolicy } from '@lookup/contracts';
import { queryAddresses, type ResolverSettings } from './dns.ts';

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** The error a refused address becomes (each caller names its own code and wording). */
export type RefusalError = (hostname: string, ip: string, verdict: Extract<PolicyVerdict, { allowed: false }>) => Error;

/**
 * A `lookup` for net/tls.connect (an undici Agent's `connect.lookup`): resolves `hostname` (A and AAAA, through the
 * configured resolver), refuses the connection unless EVERY address passes the policy, and returns only those
 * checked addresses, so what is checked is what is connected to (no second resolution between check and connect).
 * Used by the RDAP worker's HTTP client and the completion-callback sender.
 */
export function checkedLookup(policy: TargetPolicy, dns: ResolverSettings, refuse: RefusalError) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    resolveAll(hostname, dns).then(
      (addresses) => {
        for (const { address } of addresses) {
          const verdict = policy.checkAddress(address);
          if (!verdict.allowed) return callback(refuse(hostname, address, verdict), '');
        }
        const wanted = options.family === 4 || options.family === 6 ? addresses.filter((a) => a.family === options.family) : addresses;
        if (wanted.length === 0) {
          return callback(Object.assign(new Error(`${hostname} has no IPv${options.family} address`), { code: 'ENOTFOUND' }), '');
        }
        if (options.all) return callback(null, wanted);
        return callback(null, wanted[0]!.address, wanted[0]!.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, ''),
    );
  };
}

async function resolveAll(hostname: string, settings: ResolverSettings): Promise<LookupAddress[]> {
  const { a, aaaa, codes } = await queryAddresses(hostname, settings);
  const addresses: LookupAddress[] = [...a.map((address) => ({ address, family: 4 })), ...aaaa.map((address) => ({ address, family: 6 }))];
  if (addresses.length > 0) return addresses;
  const code = codes.find((c) => c !== 'OK' && c !== 'ENODATA') ?? 'ENOTFOUND';
  throw Object.assign(new Error(`${hostname} has no A or AAAA records (${code})`), { code });
}

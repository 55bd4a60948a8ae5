import { isIPv6 } from 'node:net';
import { domainToASCII } from 'node:url';
import type { TargetType } from './status.ts';

export type TargetCheck =
  | { ok: true; target: string; targetType: TargetType }
  | { ok: false; error: string };

const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])';
const IPV4_RE = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`);
const ZONE_RE = /^[0-9A-Za-z_.\-]{1,64}$/;
const LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const MAX_INPUT = 1024;

/** Strict dotted-quad: four decimal octets 0-255, no leading zeros, no shorthand ("1.2.3", "0x7f.0.0.1"). */
export function isStrictIPv4(s: string): boolean {
  return IPV4_RE.test(s);
}

/** IPv6 in any RFC 4291 text form, optionally with a zone suffix (`fe80::1%eth0`). */
export function isIPv6WithZone(s: string): boolean {
  const pct = s.indexOf('%');
  if (pct === -1) return isIPv6(s);
  return isIPv6(s.slice(0, pct)) && ZONE_RE.test(s.slice(pct + 1));
}

/**
 * Validates and normalises a lookup target. Input is trimmed first. IP addresses are kept as written
 * (IPv6 lower-cased, its zone kept as written); domains are converted to their ASCII (punycode) form,
 * lower-cased, and a single trailing dot is dropped.
 */
export function validateTarget(raw: unknown): TargetCheck {
  if (typeof raw !== 'string') return { ok: false, error: 'target must be a string' };
  if (raw.length > MAX_INPUT) return { ok: false, error: `target is longer than ${MAX_INPUT} characters` };
  const s = raw.trim();
  if (s.length === 0) return { ok: false, error: 'target is empty' };
  if (isStrictIPv4(s)) return { ok: true, target: s, targetType: 'IPAddress' };
  if (s.includes(':')) {
    if (isIPv6WithZone(s)) {
      // Lower-case the address only: a zone is an interface name, and those are case-sensitive.
      const pct = s.indexOf('%');
      return { ok: true, target: pct === -1 ? s.toLowerCase() : s.slice(0, pct).toLowerCase() + s.slice(pct), targetType: 'IPAddress' };
    }
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s) || /[/?#@\\]/.test(s)) {
      return { ok: false, error: 'target must be an IP address or a domain name, not a URL' };
    }
    if (/^[^:]+:\d*$/.test(s)) return { ok: false, error: `'${s}' must not include a port` };
    return { ok: false, error: `'${s}' is not a valid IPv6 address` };
  }
  return validateDomain(s);
}

function validateDomain(s: string): TargetCheck {
  if (/\s/.test(s)) return { ok: false, error: 'target must not contain whitespace' };
  if (/[/?#@\\]/.test(s)) return { ok: false, error: 'target must be an IP address or a domain name, not a URL' };
  let name = s;
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name === '' || name.endsWith('.') || name.startsWith('.') || name.includes('..')) {
    return { ok: false, error: `'${s}' has an empty label` };
  }
  const ascii = /^[\x00-\x7f]*$/.test(name) ? name.toLowerCase() : domainToASCII(name);
  if (!ascii) return { ok: false, error: `'${s}' is not a valid internationalised domain name` };
  // A name whose every label is decimal or 0x-hex is an address in inet_aton's loose syntax ('1.2.3',
  // '0x7f.1', '127.0.0.0x1' all mean an IPv4 address to the system resolver), not a domain: refuse it
  // rather than let it past the strict IPv4 and private-address checks.
  if (/^(?:(?:0x[0-9a-f]*|[0-9]+)\.)*(?:0x[0-9a-f]*|[0-9]+)$/i.test(ascii)) {
    return { ok: false, error: `'${s}' is not a valid IPv4 address (expected four decimal octets 0-255)` };
  }
  if (ascii.length > 253) return { ok: false, error: 'domain is longer than 253 characters' };
  const labels = ascii.split('.');
  if (labels.length < 2) return { ok: false, error: `'${s}' is not a fully qualified domain name (it needs at least two labels)` };
  for (const label of labels) {
    if (label.length > 63) return { ok: false, error: `label '${label.slice(0, 20)}...' is longer than 63 characters` };
    if (!LABEL_RE.test(label)) {
      return { ok: false, error: `label '${label}' may contain only letters, digits and inner hyphens` };
    }
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) return { ok: false, error: 'the top-level domain must not be all digits' };
  return { ok: true, target: ascii, targetType: 'Domain' };
}

/**
 * Header rules of the resource proxy (RFC 9110 7.6.1): hop-by-hop headers describe one connection, so a proxy
 * never forwards them, in either direction. That is the standard list below plus every header the `Connection`
 * header names (`Connection: x-secret` makes X-Secret hop-by-hop). The caller's credentials never reach a resource
 * worker either.
 */

/** Hop-by-hop in every message (RFC 9110 7.6.1, RFC 7230 6.1 and the de facto Keep-Alive / Proxy-Connection). */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
]);

/** Request headers never forwarded besides the hop-by-hop ones: framing the API redoes, and the caller's credentials. */
const REQUEST_ONLY = new Set(['host', 'content-length', 'authorization', 'x-api-key', 'x-admin-key', 'cookie']);
/** Response headers the API sets itself. */
const RESPONSE_ONLY = new Set(['content-length', 'x-resource-owner', 'x-resource-epoch']);

type HeaderValue = string | string[] | number | undefined;

/** The header names a message's `Connection` header lists (comma-separated tokens, case-insensitive). */
export function connectionTokens(value: HeaderValue): Set<string> {
  const tokens = new Set<string>();
  if (value === undefined) return tokens;
  for (const part of Array.isArray(value) ? value : [String(value)]) {
    for (const token of part.split(',')) {
      const t = token.trim().toLowerCase();
      if (t) tokens.add(t);
    }
  }
  return tokens;
}

function strip(headers: Record<string, HeaderValue>, also: ReadonlySet<string>): Record<string, string> {
  let connectionValue: HeaderValue;
  for (const [name, value] of Object.entries(headers)) if (name.toLowerCase() === 'connection') connectionValue = value;
  const named = connectionTokens(connectionValue);
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const n = name.toLowerCase();
    if (HOP_BY_HOP_HEADERS.has(n) || named.has(n) || also.has(n)) continue;
    out[n] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return out;
}

/** The client's headers as forwarded to the resource owner (lower-case names). */
export function forwardedRequestHeaders(headers: Record<string, HeaderValue>): Record<string, string> {
  return strip(headers, REQUEST_ONLY);
}

/** The owner's response headers as relayed to the client (lower-case names). */
export function relayedResponseHeaders(headers: Record<string, HeaderValue>): Record<string, string> {
  return strip(headers, RESPONSE_ONLY);
}

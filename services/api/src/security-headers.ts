import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet, { type HelmetOptions } from 'helmet';

/**
 * helmet's security headers, computed once. helmet (what @fastify/helmet runs on every request) sets about a dozen
 * headers through `res.setHeader`, each call validating its name and value again: 5 % of the API's CPU under the
 * benchmark. Nothing in them varies per request (no CSP nonces), so helmet runs once here, against a recorder, and
 * the API adds the result with one `reply.headers()` per request; fastify writes them with the status line.
 */
export function securityHeaders(options: Readonly<HelmetOptions>): Readonly<Record<string, string>> {
  const headers: Record<string, string> = {};
  const recorder = {
    setHeader(name: string, value: string | number | readonly string[]) {
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
    },
    removeHeader(name: string) {
      delete headers[name.toLowerCase()];
    },
  };
  let finished = false;
  helmet(options)({} as IncomingMessage, recorder as unknown as ServerResponse, (err?: unknown) => {
    if (err) throw err;
    finished = true;
  });
  // helmet's middleware is synchronous; if a future version were not, refuse to start rather than send nothing.
  if (!finished) throw new Error('helmet did not finish synchronously; security headers cannot be precomputed');
  return Object.freeze(headers);
}

/** The API's policy: helmet's defaults, without upgrade-insecure-requests (it breaks Swagger UI over plain HTTP). */
export const API_SECURITY_HEADERS = securityHeaders({
  contentSecurityPolicy: { useDefaults: true, directives: { upgradeInsecureRequests: null } },
});

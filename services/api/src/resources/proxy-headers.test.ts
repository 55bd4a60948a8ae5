import { describe, expect, it } from 'vitest';
import { connectionTokens, forwardedRequestHeaders, relayedResponseHeaders } from './proxy-headers.ts';

describe('proxy header rules (RFC 9110 7.6.1)', () => {
  it('reads the Connection header as case-insensitive, comma-separated tokens, over repeated headers', () => {
    expect([...connectionTokens(' X-Secret ,keep-alive,, Close ')]).toEqual(['x-secret', 'keep-alive', 'close']);
    expect([...connectionTokens(['a', 'B, c'])]).toEqual(['a', 'b', 'c']);
    expect(connectionTokens(undefined).size).toBe(0);
  });

  it('drops hop-by-hop headers, those named in Connection, framing and credentials from a request', () => {
    const out = forwardedRequestHeaders({
      host: 'api',
      connection: 'X-Secret, Upgrade',
      'x-secret': '1',
      'keep-alive': 'timeout=5',
      'proxy-connection': 'keep-alive',
      te: 'trailers',
      trailer: 'x-t',
      'transfer-encoding': 'chunked',
      upgrade: 'websocket',
      'proxy-authorization': 'Basic x',
      'proxy-authenticate': 'Basic',
      authorization: 'Bearer t',
      'x-api-key': 'k',
      'x-admin-key': 'a',
      cookie: 'c=1',
      'content-length': '3',
      'content-type': 'application/json',
      'x-multi': ['a', 'b'],
      'x-undefined': undefined,
    });
    expect(out).toEqual({ 'content-type': 'application/json', 'x-multi': 'a, b' });
  });

  it("drops hop-by-hop headers and those named in the owner's Connection header from a response, matching names case-insensitively", () => {
    const out = relayedResponseHeaders({
      Connection: 'x-private',
      'X-Private': 'leak',
      'Keep-Alive': 'timeout=5',
      'Proxy-Authenticate': 'Basic',
      'Content-Length': '10',
      'X-Resource-Owner': 'forged',
      'Content-Type': 'text/plain',
      'Set-Cookie': 'a=1',
    });
    expect(out).toEqual({ 'content-type': 'text/plain', 'set-cookie': 'a=1' });
  });
});

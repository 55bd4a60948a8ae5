import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '@lookup/config';
import { isLoopbackHost, startupWarnings } from './startup-warnings.ts';
import { fastifyTrustProxy } from './proxy-trust.ts';

describe('startup warnings', () => {
  it('warns when ALLOW_PRIVATE_TARGETS is set while the API listens on a non-loopback address', () => {
    const exposed = startupWarnings(loadConfig({ ALLOW_PRIVATE_TARGETS: 'true', API_HOST: '0.0.0.0' }));
    expect(exposed).toHaveLength(1);
    expect(exposed[0]).toMatch(/ALLOW_PRIVATE_TARGETS=true while the API listens on 0\.0\.0\.0/);
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost']) {
      expect(startupWarnings(loadConfig({ ALLOW_PRIVATE_TARGETS: 'true', API_HOST: host })), host).toEqual([]);
    }
    expect(startupWarnings(loadConfig({ API_HOST: '0.0.0.0' }))).toEqual([]);
    expect(isLoopbackHost('::')).toBe(false);
    expect(isLoopbackHost('10.0.0.1')).toBe(false);
  });

  it('warns that TRUST_PROXY=true trusts every hop', () => {
    const w = startupWarnings(loadConfig({ TRUST_PROXY: 'true', API_HOST: '127.0.0.1' }));
    expect(w).toHaveLength(1);
    expect(w[0]).toMatch(/TRUST_PROXY=true trusts every hop/);
  });
});

describe('edge configuration', () => {
  it('reads TRUST_PROXY as false, a hop count, a list of addresses/CIDRs, or true', () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: '0' }).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.1, 172.16.0.0/12,::1,fd00::/8' }).trustProxy).toEqual(['10.0.0.1', '172.16.0.0/12', '::1', 'fd00::/8']);
    for (const bad of ['10.0.0.1/33', 'proxy.local', '10.0.0.0/8/1', '::1/129', '1.2.3', '999']) {
      expect(() => loadConfig({ TRUST_PROXY: bad }), bad).toThrow(ConfigError);
    }
    const hops = fastifyTrustProxy(2) as (address: string, hop: number) => boolean;
    expect([hops('203.0.113.1', 0), hops('203.0.113.1', 1), hops('203.0.113.1', 2)]).toEqual([true, true, false]);
    expect(fastifyTrustProxy(false)).toBe(false);
  });

  it('reads the edge limits with their defaults, and refuses a header timeout above the request timeout', () => {
    const c = loadConfig({});
    expect({
      unauth: c.rateLimitUnauthenticatedPerMin, request: c.apiRequestTimeoutMs, headers: c.apiHeadersTimeoutMs, keepAlive: c.apiKeepAliveTimeoutMs,
      idle: c.apiIdleTimeoutMs, perClient: c.apiMaxConnectionsPerClient, total: c.apiMaxConnections, headerBytes: c.apiMaxHeaderBytes,
      url: c.apiMaxUrlLength, cors: c.corsOrigins,
    }).toEqual({ unauth: 30, request: 30_000, headers: 10_000, keepAlive: 72_000, idle: 60_000, perClient: 64, total: 10_000, headerBytes: 16_384, url: 8192, cors: [] });
    expect(() => loadConfig({ API_REQUEST_TIMEOUT_MS: '5000', API_HEADERS_TIMEOUT_MS: '6000' })).toThrow(/API_HEADERS_TIMEOUT_MS/);
    // The idle timeout stays above the event stream's 15 s heartbeat.
    expect(() => loadConfig({ API_IDLE_TIMEOUT_MS: '10000' })).toThrow(/API_IDLE_TIMEOUT_MS/);
  });

  it('reads CORS_ORIGINS as exact origins, or * alone', () => {
    expect(loadConfig({ CORS_ORIGINS: 'https://app.example.com, http://localhost:3000/' }).corsOrigins).toEqual(['https://app.example.com', 'http://localhost:3000']);
    expect(loadConfig({ CORS_ORIGINS: '*' }).corsOrigins).toEqual(['*']);
    for (const bad of ['app.example.com', 'https://app.example.com/path', 'ftp://x.example', '*, https://a.example']) {
      expect(() => loadConfig({ CORS_ORIGINS: bad }), bad).toThrow(ConfigError);
    }
  });
});

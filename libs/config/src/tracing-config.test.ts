import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, loadTracingConfig } from './config.ts';

describe('tracing configuration (OTEL_*)', () => {
  it('is off unless OTEL_EXPORTER_OTLP_ENDPOINT is set, and off again with OTEL_SDK_DISABLED=true', () => {
    expect(loadTracingConfig({})).toEqual({ otlpEndpoint: undefined, serviceName: undefined, protocol: 'http/protobuf' });
    expect(loadTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: '' }).otlpEndpoint).toBeUndefined();
    expect(loadTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector:4318/' }).otlpEndpoint).toBe('http://otel-collector:4318');
    expect(loadTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector:4318', OTEL_SDK_DISABLED: 'true' }).otlpEndpoint).toBeUndefined();
  });

  it('takes the traces protocol over the general one, and the service name as given', () => {
    expect(loadTracingConfig({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }).protocol).toBe('http/json');
    expect(loadTracingConfig({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' }).protocol).toBe('http/protobuf');
    expect(loadTracingConfig({ OTEL_SERVICE_NAME: ' lookup-api-eu ' }).serviceName).toBe('lookup-api-eu');
  });

  it('names every bad OTEL_* value, here and in the whole configuration', () => {
    const bad = { OTEL_EXPORTER_OTLP_ENDPOINT: 'otel-collector:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_SDK_DISABLED: 'maybe' };
    for (const load of [loadTracingConfig, loadConfig]) {
      let err: unknown;
      try {
        load(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems.join('\n')).toMatch(/OTEL_EXPORTER_OTLP_ENDPOINT must use http: or https:.*\n.*OTEL_EXPORTER_OTLP_PROTOCOL must be one of http\/protobuf, http\/json/s);
      expect((err as ConfigError).problems.join('\n')).toContain('OTEL_SDK_DISABLED must be true or false');
    }
  });
});

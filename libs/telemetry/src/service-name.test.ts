import { describe, expect, it } from 'vitest';
import { defaultServiceName } from './service-name.ts';

describe('defaultServiceName', () => {
  it('names a service by its folder, a worker by its own folder under workers/', () => {
    expect(defaultServiceName('/app/services/api/dist/src/main.js')).toBe('lookup-api');
    expect(defaultServiceName('services/saga/dist/src/main.js')).toBe('lookup-saga');
    expect(defaultServiceName('/w/services/workers/reverse-dns/dist/src/main.js')).toBe('lookup-reverse-dns');
    expect(defaultServiceName('/w/services/resource-worker/src/main.ts')).toBe('lookup-resource-worker');
  });

  it('falls back to the script name outside services/', () => {
    expect(defaultServiceName('/tmp/scripts/dlq.ts')).toBe('lookup-dlq');
    expect(defaultServiceName(undefined)).toBe('lookup-process');
  });
});

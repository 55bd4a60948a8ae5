import { describe, expect, it } from 'vitest';
import { ALL_SERVICES, SERVICE_CATALOGUE } from '@lookup/contracts';
import { parseServices } from './services-param.ts';

const n = SERVICE_CATALOGUE.length;

describe('parseServices: the request services, bounded by the catalogue', () => {
  it('omitted means every catalogue service, in catalogue order', () => {
    expect(parseServices(undefined)).toEqual({ ok: true, services: [...ALL_SERVICES] });
    expect(ALL_SERVICES).toHaveLength(n);
  });

  it('takes every catalogue name and number', () => {
    expect(parseServices(SERVICE_CATALOGUE.map((s) => s.name))).toEqual({ ok: true, services: [...ALL_SERVICES] });
    expect(parseServices([...ALL_SERVICES].reverse())).toEqual({ ok: true, services: [...ALL_SERVICES].reverse() });
  });

  it('names every service and the number range in its problems', () => {
    const expected = `expected one of ${SERVICE_CATALOGUE.map((s) => s.name).join(', ')} or a number 0-${n - 1}`;
    expect(parseServices([n])).toEqual({ ok: false, problems: [`services[0]: unknown service ${n} (${expected})`] });
    expect(parseServices([])).toEqual({ ok: false, problems: [`services must not be empty (omit it to run all services; ${expected})`] });
  });
});

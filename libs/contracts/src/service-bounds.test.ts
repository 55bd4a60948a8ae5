// Issue 11: every bound and list of service names in the contracts comes from SERVICE_CATALOGUE, so a new
// catalogue entry's commands validate and its name is accepted and documented without touching this code.
import { describe, expect, it } from 'vitest';
import { JobSubmittedSchema, LookupCommandSchema, MessageValidators, ServiceTypeSchema, TaskCompletedSchema } from './messages.ts';
import { ServiceNameEnum, ServiceResultSchema, SubmitLookupBodySchema } from './http.ts';
import { ALL_SERVICES, MAX_SERVICE_VALUE, SERVICE_CATALOGUE, SERVICE_NAME_LIST, SERVICE_NUMBER_LIST, SERVICE_NUMBER_RANGE } from './services.ts';

const JOB = '0b6f3c9e-3f7e-4a52-9a39-5f1b7d1d2c11';
const n = SERVICE_CATALOGUE.length;

describe('service bounds derived from the catalogue', () => {
  it('numbers the services 0..n-1 in catalogue order and names them in lists', () => {
    expect(SERVICE_CATALOGUE.map((s) => s.value)).toEqual([...Array(n).keys()]);
    expect(MAX_SERVICE_VALUE).toBe(n - 1);
    expect(SERVICE_NUMBER_RANGE).toBe(`0-${n - 1}`);
    expect(SERVICE_NAME_LIST).toBe(SERVICE_CATALOGUE.map((s) => s.name).join(', '));
    expect(SERVICE_NUMBER_LIST).toBe(SERVICE_CATALOGUE.map((s) => `${s.name} ${s.value}`).join(', '));
  });

  it('message schemas take every catalogue service and nothing beyond', () => {
    expect(ServiceTypeSchema).toMatchObject({ minimum: 0, maximum: n - 1, description: SERVICE_NUMBER_LIST });
    expect(JobSubmittedSchema.properties.services).toMatchObject({ minItems: 1, maxItems: n });
    for (const schema of [LookupCommandSchema, TaskCompletedSchema]) expect(schema.properties.serviceType).toBe(ServiceTypeSchema);

    const submitted = (services: number[]) => ({
      messageId: `${JOB}:submitted`,
      correlationId: JOB,
      schemaVersion: 1,
      occurredAt: '2026-12-01T00:00:00.000Z',
      jobId: JOB,
      target: '127.0.0.2',
      targetType: 'IPAddress',
      services,
    });
    expect(MessageValidators.jobSubmitted.errors(submitted([...ALL_SERVICES]))).toEqual([]);
    expect(MessageValidators.jobSubmitted.check(submitted([n]))).toBe(false);
    for (const service of ALL_SERVICES) {
      const command = { ...submitted([]), services: undefined, serviceType: service, attempt: 1 };
      expect(MessageValidators.lookupCommand.errors(command), `service ${service}`).toEqual([]);
    }
    expect(MessageValidators.lookupCommand.check({ ...submitted([]), services: undefined, serviceType: n, attempt: 1 })).toBe(false);
  });

  it('HTTP schemas name every service and bound the numbers and the list by the catalogue', () => {
    const [byName, byNumber] = ServiceNameEnum.anyOf;
    expect(byName.description).toBe(`Service name, case-insensitive: ${SERVICE_NAME_LIST}`);
    expect(byNumber).toMatchObject({ minimum: 0, maximum: n - 1 });
    expect(ServiceNameEnum.description).toContain(`number 0-${n - 1}`);
    expect(SubmitLookupBodySchema.properties.services).toMatchObject({ minItems: 1, maxItems: n });
    expect(ServiceResultSchema.properties.serviceType.description).toContain(SERVICE_NAME_LIST);
    for (const { name } of SERVICE_CATALOGUE) expect(byName.description).toContain(name);
  });
});

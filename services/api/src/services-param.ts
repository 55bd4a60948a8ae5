import { ALL_SERVICES, SERVICE_NAME_LIST, SERVICE_NUMBER_RANGE, parseService, serviceName, type ServiceType } from '@lookup/contracts';
import { truncate } from './http-errors.ts';

export type ServicesCheck = { ok: true; services: ServiceType[] } | { ok: false; problems: string[] };

const EXPECTED = `expected one of ${SERVICE_NAME_LIST} or a number ${SERVICE_NUMBER_RANGE}`;

const show = (entry: unknown) => truncate(JSON.stringify(entry) ?? String(entry), 60);

/**
 * The request's `services`: omitted means every catalogue service, in catalogue order; otherwise each entry is a name
 * (case-insensitive) or a number, in request order. Unknown and duplicate entries are named in the problems.
 */
export function parseServices(input: readonly unknown[] | undefined): ServicesCheck {
  if (input === undefined) return { ok: true, services: [...ALL_SERVICES] };
  if (input.length === 0) return { ok: false, problems: [`services must not be empty (omit it to run all services; ${EXPECTED})`] };
  const problems: string[] = [];
  const services: ServiceType[] = [];
  input.forEach((entry, i) => {
    const service = parseService(entry);
    if (service === undefined) {
      problems.push(`services[${i}]: unknown service ${show(entry)} (${EXPECTED})`);
    } else if (services.includes(service)) {
      problems.push(`services[${i}]: duplicate service ${show(entry)} (${serviceName(service)} is already requested)`);
    } else {
      services.push(service);
    }
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, services };
}

import { createRequire } from 'node:module';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { JobStatusSchema, TargetTypeSchema } from './messages.ts';
import { RecordedOutcomeFields, ResultStatusSchema, ReuseFields } from './outcome.ts';
import { CallbackSpecSchema } from './callbacks.ts';
import { MAX_SERVICE_VALUE, SERVICE_CATALOGUE, SERVICE_NAME_LIST, SERVICE_NUMBER_RANGE, type ServiceName } from './services.ts';

/** HTTP schemas. The API validates with these and the OpenAPI document is generated from them. */

export const ServiceNameEnum = Type.Union(
  [Type.String({ description: `Service name, case-insensitive: ${SERVICE_NAME_LIST}` }), Type.Integer({ minimum: 0, maximum: MAX_SERVICE_VALUE })],
  { description: `A service by name (case-insensitive) or number ${SERVICE_NUMBER_RANGE}` },
);

export const SubmitLookupBodySchema = Type.Object(
  {
    target: Type.String({ description: 'An IPv4/IPv6 address or a domain name', examples: ['127.0.0.2'], maxLength: 1024 }),
    services: Type.Optional(
      Type.Array(ServiceNameEnum, {
        minItems: 1,
        maxItems: SERVICE_CATALOGUE.length,
        description: 'Services to run; omitted means all services',
        examples: [['GeoIP', 'ReverseDNS']],
      }),
    ),
    callback: Type.Optional(CallbackSpecSchema),
    priority: Type.Optional(
      Type.Union([Type.Literal('high'), Type.Literal('normal'), Type.Literal('low')], {
        description: 'high: ahead of a backlog of normal and low work; low: bulk work, taken at a quarter of the rate when others wait (default normal)',
      }),
    ),
    fresh: Type.Optional(
      Type.Boolean({ description: 'Run every lookup anew instead of reusing a recent result (as the header Cache-Control: no-cache)' }),
    ),
  },
  {
    $id: 'SubmitLookupBody',
    additionalProperties: false,
    // Swagger UI's "Try it out" body: a loopback target (refused unless ALLOW_PRIVATE_TARGETS, as in the README's
    // fixture setup) and explicit services, so trying it sends nothing off the machine.
    examples: [{ target: '127.0.0.2', services: ['GeoIP', 'ReverseDNS'] }],
  },
);
export type SubmitLookupBody = Static<typeof SubmitLookupBodySchema>;

export const SubmitLookupAcceptedSchema = Type.Object(
  { jobId: Type.String({ format: 'uuid' }), statusUrl: Type.String(), message: Type.String() },
  { $id: 'SubmitLookupAccepted' },
);
export type SubmitLookupAccepted = Static<typeof SubmitLookupAcceptedSchema>;

// status and success are taken out only to keep `data` where it always was in the answer (keys in schema order).
const { status, success, ...outcomeRest } = RecordedOutcomeFields;

/** One service's recorded outcome (outcome.ts) and its data. */
export const ServiceResultSchema = Type.Object(
  {
    serviceType: Type.String({ description: `Service name: ${SERVICE_NAME_LIST}` }),
    status,
    success,
    // What `data` holds per service is in the OpenAPI document (ServiceDataSchemas); validation and
    // serialisation take any object here.
    data: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()]),
    ...outcomeRest,
    completedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    ...ReuseFields,
  },
  { $id: 'ServiceResult' },
);
export type ServiceResult = Static<typeof ServiceResultSchema>;

/**
 * The JSON Schema of each service's result `data`, keyed by service name: the `dataSchema` of each worker's
 * lookup service, written to generated/service-data-schemas.json by `npm run generate`
 * (scripts/generate-service-schemas.ts), since nothing outside a worker may import it. A test fails when the
 * file is stale. Loaded on first use (the API's OpenAPI document).
 */
export type ServiceDataSchemas = Readonly<Partial<Record<ServiceName, TSchema>>>;

let dataSchemas: ServiceDataSchemas | undefined;
export function serviceDataSchemas(): ServiceDataSchemas {
  dataSchemas ??= Object.freeze(createRequire(import.meta.url)('./generated/service-data-schemas.json') as ServiceDataSchemas);
  return dataSchemas;
}

export const JobDocumentSchema = Type.Object(
  {
    jobId: Type.String({ format: 'uuid' }),
    target: Type.String(),
    targetType: TargetTypeSchema,
    status: JobStatusSchema,
    createdAt: Type.String({ format: 'date-time' }),
    completedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    completionPercentage: Type.Integer({ minimum: 0, maximum: 100 }),
    requestedServices: Type.Array(Type.String(), { description: 'Service names, in request order' }),
    results: Type.Array(ServiceResultSchema),
  },
  { $id: 'JobDocument' },
);
export type JobDocument = Static<typeof JobDocumentSchema>;

export const ServiceInfoSchema = Type.Object(
  { name: Type.String(), value: Type.Integer(), description: Type.String() },
  { $id: 'ServiceInfo' },
);

/**
 * Every error answer of the suite (API, admin routes, and the resource workers' answers relayed by the proxy):
 * `error` a short title, `message` one sentence, `code` a stable machine code where one exists (UPPER_SNAKE, e.g.
 * `STATEMENT_NOT_ALLOWED`), `details` structured extras: the list of problems of a validation error, or an object
 * (e.g. the sandbox's `{rule}`, a statement timeout's `{timeoutMs}`). `retryAfter` repeats the Retry-After header.
 */
export const ErrorBodySchema = Type.Object(
  {
    error: Type.String(),
    message: Type.String(),
    code: Type.Optional(Type.String()),
    details: Type.Optional(Type.Union([Type.Array(Type.String()), Type.Record(Type.String(), Type.Unknown())])),
    retryAfter: Type.Optional(Type.Integer({ minimum: 0, description: 'Seconds to wait before retrying (429, 503)' })),
  },
  { $id: 'ErrorBody', additionalProperties: true },
);
export type ErrorBody = Static<typeof ErrorBodySchema>;

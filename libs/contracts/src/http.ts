import { Type, type Static } from '@sinclair/typebox';
import { JobStatusSchema, ResultStatusSchema, TargetTypeSchema } from './messages.ts';

/** HTTP schemas. The API validates with these and the OpenAPI document is generated from them. */

export const ServiceNameEnum = Type.Union(
  [Type.String({ description: 'Service name, case-insensitive: GeoIP, Ping, RDAP, ReverseDNS' }), Type.Integer({ minimum: 0, maximum: 4 })],
  { description: 'A service by name (case-insensitive) or number 0-3' },
);

export const SubmitLookupBodySchema = Type.Object(
  {
    target: Type.String({ description: 'An IPv4/IPv6 address or a domain name', examples: ['127.0.0.2'], maxLength: 1024 }),
    services: Type.Optional(
      Type.Array(ServiceNameEnum, {
        minItems: 1,
        maxItems: 5,
        description: 'Services to run; omitted means all four',
        examples: [['GeoIP', 'ReverseDNS']],
      }),
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

export const ServiceResultSchema = Type.Object(
  {
    serviceType: Type.String({ description: 'Service name' }),
    status: ResultStatusSchema,
    success: Type.Boolean(),
    data: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()]),
    errorMessage: Type.Union([Type.String(), Type.Null()]),
    completedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    durationMs: Type.Union([Type.Number(), Type.Null()]),
    attempts: Type.Integer(),
  },
  { $id: 'ServiceResult' },
);
export type ServiceResult = Static<typeof ServiceResultSchema>;

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

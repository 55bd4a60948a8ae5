import { Type, type TSchema } from '@sinclair/typebox';
import {
  CallbackStatusSchema,
  ErrorBodySchema,
  JobDocumentSchema,
  ServiceInfoSchema,
  ServiceResultSchema,
  SubmitLookupAcceptedSchema,
  SubmitLookupBodySchema,
} from '@lookup/contracts';

/**
 * Route schemas. The bodies come from @lookup/contracts and are registered once with `addSchema`, so
 * validation, serialisation and the OpenAPI document (components.schemas) all use the same definitions.
 */
export const SHARED_SCHEMAS: readonly TSchema[] = [
  ErrorBodySchema,
  SubmitLookupBodySchema,
  SubmitLookupAcceptedSchema,
  ServiceResultSchema,
  JobDocumentSchema,
  ServiceInfoSchema,
  CallbackStatusSchema,
];


export const ErrorRef = Type.Ref(ErrorBodySchema);
export const SubmitBodyRef = Type.Ref(SubmitLookupBodySchema);
export const AcceptedRef = Type.Ref(SubmitLookupAcceptedSchema);
export const JobDocumentRef = Type.Ref(JobDocumentSchema);
export const CallbackStatusRef = Type.Ref(CallbackStatusSchema);
export const ServiceListSchema = Type.Array(Type.Ref(ServiceInfoSchema));

export const JobIdParamsSchema = Type.Object({
  jobId: Type.String({ format: 'uuid', description: 'The job id returned by POST /api/lookup' }),
});

export const LiveSchema = Type.Object({ status: Type.Literal('ok') });

const CheckState = Type.Union([Type.Literal('up'), Type.Literal('down')]);
export const ReadySchema = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not ready')]),
  checks: Type.Object({ rabbitmq: CheckState, redis: CheckState }),
  error: Type.Optional(Type.String()),
  message: Type.Optional(Type.String()),
});

const describe = (description: string) => ({ ...ErrorRef, description });

/** Error answers every /api route can give, besides its own. */
export const API_ERROR_RESPONSES = {
  401: describe('Missing or wrong API key (only when API_KEYS is set)'),
  429: describe('Rate limit exceeded; see the Retry-After header'),
};
export { describe as errorResponse };

/** The error answers of the submission routes: the rate limit's 429, or the tenant quota's (TENANTS). */
export const SUBMIT_ERROR_RESPONSES = {
  ...API_ERROR_RESPONSES,
  429: describe(
    'Rate limit exceeded (RATE_LIMITED; see the Retry-After header), or the tenant quota of the key (TENANT_QUOTA_EXCEEDED: ' +
      'jobs per UTC day, with Retry-After, or jobs in flight; see GET /api/usage)',
  ),
};

/** The error answers of every /api/lookup/{jobId}... route. */
export const JOB_ROUTE_ERRORS = {
  400: describe('The job id is not a UUID'),
  404: describe('No job with this id (unknown, or expired)'),
  ...API_ERROR_RESPONSES,
  503: describe('Redis is unavailable; see the Retry-After header'),
};

/**
 * The request body documented (documentation only: the proxy passes any body through as bytes) for the resource
 * routes' methods that carry one, with the SQLite worker's request as the example.
 */
export const RESOURCE_REQUEST_BODY = {
  description:
    'Passed to the owner as bytes, with its Content-Type (any type; at most RESOURCE_BODY_LIMIT_BYTES). The SQLite ' +
    'worker (keys db/{name}) takes POST with a JSON object: `query`, one SQL statement, and optional `params`, ' +
    'positional (array) or named (object).',
  required: false,
  content: {
    'application/json': {
      schema: {
        type: 'object',
        required: ['query'],
        properties: {
          query: { type: 'string', description: 'One SQL statement' },
          params: {
            oneOf: [{ type: 'array', items: {} }, { type: 'object', additionalProperties: true }],
            description: 'Positional (array) or named (object) parameters',
          },
        },
      },
      example: { query: 'SELECT 1 AS one', params: [] },
    },
  },
} as const;

/** The methods of the resource proxy that carry a request body. */
export const RESOURCE_BODY_METHODS = ['post', 'put', 'patch'] as const;

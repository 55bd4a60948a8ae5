import { Type, type Static } from '@sinclair/typebox';
import { compileValidator } from './messages.ts';

/**
 * Pinned resources: the messages between the API and the resource workers (RPC over RabbitMQ), and the
 * HTTP bodies of the admin endpoints. One schema each; both sides validate with these.
 */

export const RESOURCE_KEY_MAX_LENGTH = 512;
/** Longest raw query string (without '?') a resource request may carry. */
export const RESOURCE_QUERY_MAX_LENGTH = 8192;
/** Longest value of one forwarded header. */
export const RESOURCE_HEADER_VALUE_MAX_LENGTH = 16_384;
/** Longest name of one forwarded header. */
export const RESOURCE_HEADER_NAME_MAX_LENGTH = 256;
/** Most headers one resource request may forward. */
export const RESOURCE_HEADER_MAX_COUNT = 100;
/** Longest HTTP method name. */
export const RESOURCE_METHOD_MAX_LENGTH = 16;
/** Longest request id / correlation id of the resource RPC. */
export const RESOURCE_REQUEST_ID_MAX_LENGTH = 128;

/** Why a resource key is not acceptable, or undefined when it is. Keys are exact and case-sensitive. */
export function resourceKeyProblem(key: string): string | undefined {
  if (key.length === 0) return 'the resource key is empty';
  if (key.length > RESOURCE_KEY_MAX_LENGTH) return `the resource key is longer than ${RESOURCE_KEY_MAX_LENGTH} characters`;
  // C0 and C1 control characters, DEL; also the Unicode line/paragraph separators.
  if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(key)) return 'the resource key contains control characters';
  if (key.includes('\\')) return 'the resource key contains a backslash';
  for (const segment of key.split('/')) {
    if (segment === '') return 'the resource key has an empty path segment';
    if (segment === '.' || segment === '..') return `the resource key has a '${segment}' path segment`;
  }
  return undefined;
}

/**
 * Why a request's path, query string or headers exceed what a resource worker accepts (the limits of
 * ResourceRequestMessageSchema below, so the API and the worker check the same thing), with the HTTP status that
 * says so: 414 for a key or query string that is too long, 431 for headers, 400 otherwise. Undefined when they fit.
 */
export function resourceRequestLimitProblem(request: { key: string; query: string; method?: string; headers?: Record<string, string> }):
  | { status: 400 | 414 | 431; message: string }
  | undefined {
  if (request.key.length > RESOURCE_KEY_MAX_LENGTH) {
    return { status: 414, message: `the resource key is longer than ${RESOURCE_KEY_MAX_LENGTH} characters` };
  }
  const keyProblem = resourceKeyProblem(request.key);
  if (keyProblem) return { status: 400, message: keyProblem };
  if (request.query.length > RESOURCE_QUERY_MAX_LENGTH) {
    return { status: 414, message: `the query string is longer than ${RESOURCE_QUERY_MAX_LENGTH} characters` };
  }
  if (request.method !== undefined && (request.method.length === 0 || request.method.length > RESOURCE_METHOD_MAX_LENGTH)) {
    return { status: 400, message: `the method must be 1-${RESOURCE_METHOD_MAX_LENGTH} characters` };
  }
  if (request.headers) {
    const entries = Object.entries(request.headers);
    if (entries.length > RESOURCE_HEADER_MAX_COUNT) return { status: 431, message: `more than ${RESOURCE_HEADER_MAX_COUNT} headers to forward` };
    for (const [name, value] of entries) {
      if (name.length > RESOURCE_HEADER_NAME_MAX_LENGTH) return { status: 431, message: `a header name is longer than ${RESOURCE_HEADER_NAME_MAX_LENGTH} characters` };
      if (value.length > RESOURCE_HEADER_VALUE_MAX_LENGTH) {
        return { status: 431, message: `header '${name.slice(0, 100)}' is longer than ${RESOURCE_HEADER_VALUE_MAX_LENGTH} characters` };
      }
    }
  }
  return undefined;
}

const Key = Type.String({ minLength: 1, maxLength: RESOURCE_KEY_MAX_LENGTH });
const HeaderMap = Type.Record(Type.String(), Type.String({ maxLength: RESOURCE_HEADER_VALUE_MAX_LENGTH }));
/** The headers a request forwards: at most RESOURCE_HEADER_MAX_COUNT, names up to RESOURCE_HEADER_NAME_MAX_LENGTH. */
const RequestHeaderMap = Type.Record(Type.String({ pattern: `^[\\s\\S]{1,${RESOURCE_HEADER_NAME_MAX_LENGTH}}$` }), Type.String({ maxLength: RESOURCE_HEADER_VALUE_MAX_LENGTH }), {
  maxProperties: RESOURCE_HEADER_MAX_COUNT,
  additionalProperties: false,
});

/** API -> worker: one proxied HTTP request for a key, under the lease epoch the API placed it with. */
export const ResourceRequestMessageSchema = Type.Object(
  {
    type: Type.Literal('request'),
    requestId: Type.String({ minLength: 1, maxLength: RESOURCE_REQUEST_ID_MAX_LENGTH }),
    key: Key,
    epoch: Type.Integer({ minimum: 1 }),
    method: Type.String({ minLength: 1, maxLength: RESOURCE_METHOD_MAX_LENGTH }),
    /** The path after /api/resources/, i.e. the key, plus the raw query string (without '?'), if any. */
    query: Type.String({ maxLength: RESOURCE_QUERY_MAX_LENGTH }),
    headers: RequestHeaderMap,
    /** Body bytes, base64. */
    body: Type.String(),
    /** Epoch ms (sender's wall clock) after which the API no longer waits for the answer. */
    deadline: Type.Number(),
  },
  { $id: 'ResourceRequestMessage', additionalProperties: false },
);
export type ResourceRequestMessage = Static<typeof ResourceRequestMessageSchema>;

/** API -> worker: stop working on a request (the API answered 504 or the client went away). */
export const ResourceCancelMessageSchema = Type.Object(
  {
    type: Type.Literal('cancel'),
    requestId: Type.String({ minLength: 1, maxLength: 128 }),
    key: Key,
    reason: Type.String({ maxLength: 200 }),
  },
  { $id: 'ResourceCancelMessage', additionalProperties: false },
);
export type ResourceCancelMessage = Static<typeof ResourceCancelMessageSchema>;

export const ResourceWorkerMessageSchema = Type.Union([ResourceRequestMessageSchema, ResourceCancelMessageSchema]);
export type ResourceWorkerMessage = Static<typeof ResourceWorkerMessageSchema>;

/**
 * Worker -> API. `response`: the owner's answer. `refused`: the worker does not (or no longer) own the key under
 * that epoch, or is draining; the API re-places the key and tries again. `error`: the worker could not accept the
 * request (it fails the request schema: 400/414/431) or could not send its answer (larger than
 * RESOURCE_REPLY_LIMIT_BYTES: 413); the API answers `status` with `{error, message}` for that request only.
 */
export const ResourceReplyMessageSchema = Type.Union(
  [
    Type.Object(
      {
        type: Type.Literal('response'),
        requestId: Type.String(),
        worker: Type.String(),
        epoch: Type.Integer({ minimum: 1 }),
        status: Type.Integer({ minimum: 100, maximum: 599 }),
        headers: HeaderMap,
        body: Type.String({ description: 'base64' }),
      },
      { additionalProperties: false },
    ),
    Type.Object(
      {
        type: Type.Literal('refused'),
        requestId: Type.String(),
        worker: Type.String(),
        reason: Type.Union([
          Type.Literal('stale-epoch'),
          Type.Literal('not-owner'),
          Type.Literal('lease-lost'),
          Type.Literal('draining'),
          Type.Literal('cancelled'),
        ]),
        message: Type.String(),
      },
      { additionalProperties: false },
    ),
    Type.Object(
      {
        type: Type.Literal('error'),
        requestId: Type.String({ maxLength: RESOURCE_REQUEST_ID_MAX_LENGTH }),
        worker: Type.String({ maxLength: 128 }),
        status: Type.Integer({ minimum: 400, maximum: 599 }),
        error: Type.String({ maxLength: 200 }),
        message: Type.String({ maxLength: 2000 }),
      },
      { additionalProperties: false },
    ),
  ],
  { $id: 'ResourceReplyMessage' },
);
export type ResourceReplyMessage = Static<typeof ResourceReplyMessageSchema>;

export const ResourceMessageValidators = Object.freeze({
  toWorker: compileValidator(ResourceWorkerMessageSchema),
  reply: compileValidator(ResourceReplyMessageSchema),
});

// ---------------------------------------------------------------------------------------------------------
// Admin HTTP bodies

export const ResourceWorkerInfoSchema = Type.Object(
  {
    id: Type.String(),
    healthy: Type.Boolean({ description: 'Heartbeat seen within RESOURCE_HEARTBEAT_MS x RESOURCE_MAX_MISSED' }),
    draining: Type.Boolean(),
    lastBeat: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    resources: Type.Array(Type.String(), { description: 'Keys pinned to this worker' }),
    host: Type.Optional(Type.String()),
    pid: Type.Optional(Type.Integer()),
    startedAt: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { $id: 'ResourceWorkerInfo' },
);
export type ResourceWorkerInfo = Static<typeof ResourceWorkerInfoSchema>;

export const ResourcePinSchema = Type.Object(
  {
    key: Type.String(),
    owner: Type.String(),
    epoch: Type.Integer(),
    leased: Type.Boolean({ description: 'Whether the owner currently holds a live lease on the key' }),
    ownerHealthy: Type.Boolean(),
  },
  { $id: 'ResourcePin' },
);
export type ResourcePin = Static<typeof ResourcePinSchema>;

export const MoveResourceBodySchema = Type.Object(
  {
    key: Key,
    to: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'Target worker id; omitted: the least loaded other worker' })),
  },
  { $id: 'MoveResourceBody', additionalProperties: false, examples: [{ key: 'db/customers' }] },
);
export type MoveResourceBody = Static<typeof MoveResourceBodySchema>;

export const UnpinResourceBodySchema = Type.Object({ key: Key }, { $id: 'UnpinResourceBody', additionalProperties: false, examples: [{ key: 'db/customers' }] });
export type UnpinResourceBody = Static<typeof UnpinResourceBodySchema>;

export const ResourceAdminResultSchema = Type.Object(
  {
    key: Type.Optional(Type.String()),
    worker: Type.Optional(Type.String()),
    status: Type.String({ description: 'What happened: released, moved, pending, not-pinned, draining' }),
    owner: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    epoch: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
    message: Type.String(),
  },
  { $id: 'ResourceAdminResult' },
);
export type ResourceAdminResult = Static<typeof ResourceAdminResultSchema>;

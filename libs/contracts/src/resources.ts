import { Type, type Static } from '@sinclair/typebox';
import { compileValidator } from './messages.ts';

/**
 * Pinned resources: the messages between the API and the resource workers (RPC over RabbitMQ), and the
 * HTTP bodies of the admin endpoints. One schema each; both sides validate with these.
 */

export const RESOURCE_KEY_MAX_LENGTH = 512;

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

const Key = Type.String({ minLength: 1, maxLength: RESOURCE_KEY_MAX_LENGTH });
const HeaderMap = Type.Record(Type.String(), Type.String({ maxLength: 16_384 }));

/** API -> worker: one proxied HTTP request for a key, under the lease epoch the API placed it with. */
export const ResourceRequestMessageSchema = Type.Object(
  {
    type: Type.Literal('request'),
    requestId: Type.String({ minLength: 1, maxLength: 128 }),
    key: Key,
    epoch: Type.Integer({ minimum: 1 }),
    method: Type.String({ minLength: 1, maxLength: 16 }),
    /** The path after /api/resources/, i.e. the key, plus the raw query string (without '?'), if any. */
    query: Type.String({ maxLength: 8192 }),
    headers: HeaderMap,
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
 * that epoch, or is draining; the API re-places the key and tries again.
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
  { $id: 'MoveResourceBody', additionalProperties: false },
);
export type MoveResourceBody = Static<typeof MoveResourceBodySchema>;

export const UnpinResourceBodySchema = Type.Object({ key: Key }, { $id: 'UnpinResourceBody', additionalProperties: false });
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

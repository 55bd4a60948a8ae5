import { createHmac, timingSafeEqual } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { literalUnion } from './status.ts';

/** The job ends a completion callback can ask for (`callback.events`; omitted: both). */
export const CALLBACK_EVENTS = ['completed', 'cancelled'] as const;
export type CallbackEvent = (typeof CALLBACK_EVENTS)[number];

/** `callback` of a submission (POST /api/lookup, and each batch item). */
export const CallbackSpecSchema = Type.Object(
  {
    url: Type.String({
      minLength: 1,
      maxLength: 2048,
      description: 'http(s) URL the job document is POSTed to when the job ends; it passes the target policy (no private addresses unless allowed)',
      examples: ['https://hooks.example.com/lookup'],
    }),
    events: Type.Optional(
      Type.Array(literalUnion(CALLBACK_EVENTS), {
        minItems: 1,
        maxItems: CALLBACK_EVENTS.length,
        uniqueItems: true,
        description: 'Which job ends are delivered; omitted means both',
      }),
    ),
  },
  { additionalProperties: false, description: 'Completion callback (webhook), signed with X-Lookup-Signature' },
);
export type CallbackSpec = { url: string; events: CallbackEvent[] };

/** The header carrying a delivery's signature: `t=<unix seconds>,sha256=<hex HMAC-SHA256(secret, t + "." + body)>`. */
export const CALLBACK_SIGNATURE_HEADER = 'x-lookup-signature';
/** The delivery's stable id (the same on every attempt): receivers de-duplicate on it. */
export const CALLBACK_DELIVERY_HEADER = 'x-lookup-delivery';
export const CALLBACK_EVENT_HEADER = 'x-lookup-event';
export const CALLBACK_ATTEMPT_HEADER = 'x-lookup-attempt';

/** The signature header's value for `body` sent at `timestampSeconds`. */
export function signCallback(secret: string, timestampSeconds: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex');
  return `t=${timestampSeconds},sha256=${mac}`;
}

/**
 * What a receiver does with X-Lookup-Signature: true when it was made with `secret` over this very body, at most
 * `toleranceSeconds` from `nowSeconds` (replays of an old delivery are refused). Constant-time comparison.
 */
export function verifyCallbackSignature(secret: string, header: string | undefined, body: string, nowSeconds: number, toleranceSeconds = 300): boolean {
  const m = /^t=(\d{1,12}),sha256=([0-9a-f]{64})$/.exec(header ?? '');
  if (!m) return false;
  const ts = Number(m[1]);
  if (Math.abs(nowSeconds - ts) > toleranceSeconds) return false;
  const expected = Buffer.from(signCallback(secret, ts, body).slice(`t=${ts},sha256=`.length), 'hex');
  return timingSafeEqual(expected, Buffer.from(m[2]!, 'hex'));
}

/** A callback's delivery state, as GET /api/lookup/{jobId}/callbacks shows it. */
export const CALLBACK_STATES = ['none', 'waiting', 'pending', 'retrying', 'delivered', 'dead-lettered', 'skipped'] as const;
export type CallbackState = (typeof CALLBACK_STATES)[number];

/** One delivery attempt as recorded. */
export const CallbackAttemptSchema = Type.Object({
  attempt: Type.Integer({ minimum: 1 }),
  at: Type.String({ format: 'date-time' }),
  event: literalUnion(CALLBACK_EVENTS),
  /** The receiver's HTTP status; null when there was no answer (refused, timed out, unreachable). */
  statusCode: Type.Union([Type.Integer(), Type.Null()]),
  ok: Type.Boolean(),
  error: Type.Union([Type.String(), Type.Null()]),
  durationMs: Type.Number(),
});
export type CallbackAttempt = Static<typeof CallbackAttemptSchema>;

export const CallbackStatusSchema = Type.Object(
  {
    jobId: Type.String({ format: 'uuid' }),
    callback: Type.Union([Type.Object({ url: Type.String(), events: Type.Array(literalUnion(CALLBACK_EVENTS)) }), Type.Null()]),
    deliveryId: Type.Union([Type.String(), Type.Null()]),
    state: literalUnion(CALLBACK_STATES),
    attempts: Type.Array(CallbackAttemptSchema),
  },
  { $id: 'CallbackStatus' },
);
export type CallbackStatus = Static<typeof CallbackStatusSchema>;

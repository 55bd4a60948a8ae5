import { Type, type Static } from '@sinclair/typebox';
import { RESULT_STATUSES, literalUnion } from './status.ts';

/** A timestamp as the messages carry it (ISO 8601; no `format`: the TypeBox compiler checks none). */
export const IsoDateSchema = Type.String({ minLength: 20, maxLength: 40 });

export const ResultStatusSchema = literalUnion(RESULT_STATUSES);

/** A LookupError's `code` (errors.ts) as it crosses processes: UPPER_SNAKE, at most 64 characters. */
export const ERROR_CODE_PATTERN = '^[A-Z][A-Z0-9_]{0,63}$';
const ERROR_CODE_RE = new RegExp(ERROR_CODE_PATTERN);

/** The code of a failure, when it has one fit to cross the boundary (else null: the message still says it). */
export function errorCodeOf(err: unknown): string | null {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && ERROR_CODE_RE.test(code) ? code : null;
}

/** Where a task's result document is stored. */
export const ResultLocationSchema = Type.Object(
  { storage: Type.Literal('redis'), key: Type.String({ minLength: 1, maxLength: 512 }) },
  { additionalProperties: false },
);
export type ResultLocation = Static<typeof ResultLocationSchema>;

/**
 * One service's outcome, defined here once. Composed into TaskCompleted and StoredResult (messages.ts), the HTTP
 * ServiceResult (http.ts) and the job store's record (RecordedOutcome + location, libs/store/src/job-store.ts).
 * The store's Lua scripts receive outcomes as JSON built in TypeScript and never spell these fields.
 */
export const OutcomeFields = {
  status: ResultStatusSchema,
  success: Type.Boolean(),
  errorMessage: Type.Union([Type.String({ maxLength: 2000 }), Type.Null()]),
  /** The failure's stable code (e.g. TARGET_REFUSED); null on success and for a failure without one. */
  errorCode: Type.Union([Type.String({ maxLength: 64, pattern: ERROR_CODE_PATTERN }), Type.Null()], {
    description: "The failure's stable code (UPPER_SNAKE, e.g. TARGET_REFUSED); null on success and for failures without one",
  }),
  completedAt: IsoDateSchema,
  durationMs: Type.Number({ minimum: 0 }),
  attempts: Type.Integer({ minimum: 0, maximum: 100 }),
};
export const OutcomeSchema = Type.Object(OutcomeFields);

/**
 * A result reused from an earlier lookup of the same service and target within its freshness window
 * (CACHE_TTL_<SERVICE>): `cached: true` and the reused result's age. Absent on a result looked up for this job.
 */
export const ReuseFields = {
  cached: Type.Optional(Type.Boolean({ description: 'True when this result was reused from an earlier lookup of the same service and target' })),
  ageMs: Type.Optional(Type.Number({ minimum: 0, description: "A reused result's age (ms) when the job used it" })),
};
/** A worker's outcome of one task (what TaskCompleted announces and StoredResult stores). */
export type Outcome = Static<typeof OutcomeSchema>;

/**
 * An outcome as the job records it and the API shows it: a worker's, or one the store fills in for a service
 * that never reported (Cancelled, TimedOut), which has no duration.
 */
export const RecordedOutcomeFields = {
  ...OutcomeFields,
  durationMs: Type.Union([OutcomeFields.durationMs, Type.Null()]),
};
export const RecordedOutcomeSchema = Type.Object(RecordedOutcomeFields);
export type RecordedOutcome = Static<typeof RecordedOutcomeSchema>;

const OUTCOME_KEYS = Object.keys(OutcomeFields) as (keyof Outcome)[];

/** An outcome read from a message or record that may predate `errorCode` (it then reads as null). */
type OutcomeInput<T extends Outcome | RecordedOutcome> = Omit<T, 'errorCode'> & { errorCode?: string | null };

/**
 * Exactly the outcome fields of `source` (a message, a stored result, a record: its other fields stay behind),
 * a missing `errorCode` as null.
 */
export function outcomeOf(source: OutcomeInput<Outcome>): Outcome;
export function outcomeOf(source: OutcomeInput<RecordedOutcome>): RecordedOutcome;
export function outcomeOf(source: OutcomeInput<RecordedOutcome>): RecordedOutcome {
  const out: Record<string, unknown> = {};
  for (const key of OUTCOME_KEYS) out[key] = source[key as keyof typeof source];
  out.errorCode = source.errorCode ?? null;
  return out as RecordedOutcome;
}

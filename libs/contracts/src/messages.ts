import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { JOB_STATUSES, PRIORITIES, TARGET_TYPES, literalUnion } from './status.ts';
import { CALLBACK_EVENTS } from './callbacks.ts';
import { IsoDateSchema as IsoDate, OutcomeFields, ResultLocationSchema, ReuseFields } from './outcome.ts';
import { MAX_SERVICE_VALUE, SERVICE_CATALOGUE, SERVICE_NUMBER_LIST } from './services.ts';

export const SCHEMA_VERSION = 1 as const;

/** Routing keys (`entity.event`) on the events exchange, and command routing keys on the commands exchange. */
export const RoutingKeys = Object.freeze({
  jobSubmitted: 'job.submitted',
  taskCompleted: 'task.completed',
  jobCompleted: 'job.completed',
  /** API to every worker process: a job was cancelled, abort its lookups in flight (a broadcast; body: JobCompleted). */
  jobCancelled: 'job.cancelled',
  command: (slug: string) => `lookup.${slug}`,
  /** A command of a high or low priority job (normal ones use `command`). */
  priorityCommand: (slug: string, priority: 'high' | 'low') => `lookup.${slug}.${priority}`,
  /** A completion callback's next attempt, back from its delay queue (commands exchange). */
  callbackDelivery: 'callback.deliver',
});

// literalUnion is in status.ts; ResultStatusSchema and ResultLocationSchema are part of the outcome (outcome.ts).

/** A service number; the bounds and the description come from SERVICE_CATALOGUE. */
export const ServiceTypeSchema = Type.Integer({ minimum: 0, maximum: MAX_SERVICE_VALUE, description: SERVICE_NUMBER_LIST });
export const TargetTypeSchema = literalUnion(TARGET_TYPES);
export const JobStatusSchema = literalUnion(JOB_STATUSES);
/** A job id (any UUID, either case): the one pattern the messages, the HTTP routes and the workers check. */
export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
export const UUID_RE = new RegExp(UUID_PATTERN);
const Uuid = Type.String({ pattern: UUID_PATTERN });

/** Fields every message carries. `correlationId` is the job id. */
const Envelope = {
  messageId: Type.String({ minLength: 1, maxLength: 128 }),
  correlationId: Uuid,
  schemaVersion: Type.Literal(SCHEMA_VERSION),
  occurredAt: IsoDate,
};

export const JobSubmittedSchema = Type.Object(
  {
    ...Envelope,
    jobId: Uuid,
    target: Type.String({ minLength: 1, maxLength: 300 }),
    targetType: TargetTypeSchema,
    services: Type.Array(ServiceTypeSchema, { minItems: 1, maxItems: SERVICE_CATALOGUE.length, uniqueItems: true }),
    /** Run every lookup anew: no result reuse (Cache-Control: no-cache, or `fresh: true`). Absent: false. */
    fresh: Type.Optional(Type.Boolean()),
    /** The job's priority (absent: normal), carried to every command. */
    priority: Type.Optional(literalUnion(PRIORITIES)),
  },
  { $id: 'JobSubmitted', additionalProperties: true },
);
export type JobSubmitted = Static<typeof JobSubmittedSchema>;

export const LookupCommandSchema = Type.Object(
  {
    ...Envelope,
    jobId: Uuid,
    target: Type.String({ minLength: 1, maxLength: 300 }),
    targetType: TargetTypeSchema,
    serviceType: ServiceTypeSchema,
    /** 1-based attempt number of this command (retries republish with attempt + 1). */
    attempt: Type.Integer({ minimum: 1, maximum: 100 }),
    /** The job asked for a new lookup: the worker does not reuse a stored result (it still stores its own). */
    fresh: Type.Optional(Type.Boolean()),
    /** Its job's priority (absent: normal): which work queue of its service it goes to. */
    priority: Type.Optional(literalUnion(PRIORITIES)),
  },
  { $id: 'LookupCommand', additionalProperties: true },
);
export type LookupCommand = Static<typeof LookupCommandSchema>;

/**
 * Worker to saga: an outcome and where its result is. A worker records its outcome on the job itself when it stores
 * the result, and announces the end of a job without a tenant itself (job.completed), so it sends this only for the
 * outcome that completed a tenant's job (the saga frees its window slot and announces the job), for an outcome it
 * could not record (its result was already stored by an earlier delivery), or for a dead-lettered command (Failed);
 * the saga records whatever it gets, idempotently.
 */
export const TaskCompletedSchema = Type.Object(
  {
    ...Envelope,
    jobId: Uuid,
    serviceType: ServiceTypeSchema,
    ...OutcomeFields,
    /** Absent from messages sent before the field existed: read as null. */
    errorCode: Type.Optional(OutcomeFields.errorCode),
    /** Where the result document is; null when there is none (e.g. a cancelled task). */
    location: Type.Union([ResultLocationSchema, Type.Null()]),
  },
  { $id: 'TaskCompleted', additionalProperties: true },
);
export type TaskCompleted = Static<typeof TaskCompletedSchema>;

export const JobCompletedSchema = Type.Object(
  {
    ...Envelope,
    jobId: Uuid,
    status: JobStatusSchema,
    completedAt: IsoDate,
  },
  { $id: 'JobCompleted', additionalProperties: true },
);
export type JobCompleted = Static<typeof JobCompletedSchema>;

/** A completion callback's attempt (the saga's callback dispatcher to itself, through a delay queue). */
export const CallbackDeliverySchema = Type.Object(
  {
    ...Envelope,
    jobId: Uuid,
    /** Stable over every attempt: the receiver's de-duplication key (X-Lookup-Delivery). */
    deliveryId: Type.String({ minLength: 1, maxLength: 128 }),
    event: literalUnion(CALLBACK_EVENTS),
    attempt: Type.Integer({ minimum: 1, maximum: 100 }),
  },
  { $id: 'CallbackDelivery', additionalProperties: true },
);
export type CallbackDelivery = Static<typeof CallbackDeliverySchema>;

/** The result document a worker stores at its ResultLocation. */
export const StoredResultSchema = Type.Object({
  jobId: Uuid,
  serviceType: ServiceTypeSchema,
  data: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  ...OutcomeFields,
  /** Absent from documents stored before the field existed: read as null. */
  errorCode: Type.Optional(OutcomeFields.errorCode),
  ...ReuseFields,
});
export type StoredResult = Static<typeof StoredResultSchema>;

export interface Validator<T> {
  check(value: unknown): value is T;
  /** Human-readable list of what is wrong (empty when valid). */
  errors(value: unknown): string[];
}

/** Compiles a schema once (TypeBox's TypeCompiler); reuse the result, never compile per call. */
export function compileValidator<S extends TSchema>(schema: S): Validator<Static<S>> {
  const compiled: TypeCheck<S> = TypeCompiler.Compile(schema);
  return {
    check: (value: unknown): value is Static<S> => compiled.Check(value),
    errors: (value: unknown) => [...compiled.Errors(value)].slice(0, 10).map((e) => `${e.path || '/'}: ${e.message}`),
  };
}

export const MessageValidators = Object.freeze({
  jobSubmitted: compileValidator(JobSubmittedSchema),
  lookupCommand: compileValidator(LookupCommandSchema),
  taskCompleted: compileValidator(TaskCompletedSchema),
  jobCompleted: compileValidator(JobCompletedSchema),
  callbackDelivery: compileValidator(CallbackDeliverySchema),
});

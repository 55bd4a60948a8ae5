import { Type, type TLiteral, type TUnion } from '@sinclair/typebox';

export const JOB_STATUSES = ['Pending', 'Processing', 'Completed', 'Cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** A job's priority: carried to every command; high jumps a backlog of normal and low work (README, Priorities). */
export const PRIORITIES = ['high', 'normal', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];

export const RESULT_STATUSES = ['Succeeded', 'Failed', 'TimedOut', 'Cancelled'] as const;
export type ResultStatus = (typeof RESULT_STATUSES)[number];

export const TARGET_TYPES = ['IPAddress', 'Domain'] as const;
export type TargetType = (typeof TARGET_TYPES)[number];

export function isTerminalJobStatus(status: JobStatus): boolean {
  return status === 'Completed' || status === 'Cancelled';
}

/** Whole-number percentage of requested services that have an outcome (any outcome counts). */
export function completionPercentage(requested: number, withOutcome: number): number {
  if (requested <= 0) return 100;
  const done = Math.min(Math.max(withOutcome, 0), requested);
  return Math.floor((done * 100) / requested);
}

type LiteralTuple<T extends readonly string[]> = { -readonly [K in keyof T]: TLiteral<T[K]> };
/** The schema of one of a list of strings (the status vocabularies above). */
export const literalUnion = <const T extends readonly string[]>(values: T): TUnion<LiteralTuple<T>> =>
  Type.Union(values.map((v) => Type.Literal(v))) as unknown as TUnion<LiteralTuple<T>>;

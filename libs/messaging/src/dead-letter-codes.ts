import { deadLetters } from '@lookup/metrics';

/**
 * Why a message was dead-lettered, as a bounded code (the `reason` label of lookup_dead_letters_total; the full text
 * stays in the message's `x-dead-letter-reason` header):
 * too_large, invalid_json (or not UTF-8), too_deep (nesting), unscheduled_retry (reached a delay queue without a
 * worker's TTL), no_schema (an unknown routing key), schema_invalid, delivery_limit (kept crashing its consumer),
 * rejected (its handler refused it for good, e.g. MESSAGE_POISON), unanswerable (an RPC request with no usable
 * reply queue), invalid_envelope (an envelope whose structure is broken: dead-lettered whole, envelope.ts).
 */
export type DeadLetterCode =
  | 'too_large'
  | 'invalid_json'
  | 'too_deep'
  | 'unscheduled_retry'
  | 'no_schema'
  | 'schema_invalid'
  | 'delivery_limit'
  | 'rejected'
  | 'unanswerable'
  | 'invalid_envelope';

/** lookup_dead_letters_total{queue, reason}: called once per message the dead-letter exchange took. */
export function countDeadLetter(queueRole: string, code: DeadLetterCode): void {
  deadLetters().labels(queueRole, code).inc();
}

/** Registers lookup_dead_letters_total in this process (no series until a message is dead-lettered). */
export function declareDeadLetterMetric(): void {
  deadLetters();
}

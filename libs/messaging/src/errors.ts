import type { CodedError } from '@lookup/contracts';

/** Messaging error catalogue: stable codes, each saying whether a retry can help. */
export class MessagingError extends Error implements CodedError {
  constructor(
    readonly code: 'AMQP_NOT_CONNECTED' | 'AMQP_PUBLISH_NACKED' | 'AMQP_UNROUTABLE' | 'AMQP_PUBLISH_TIMEOUT' | 'AMQP_CLOSED',
    message: string,
    readonly retryable = true,
  ) {
    super(message);
    this.name = 'MessagingError';
  }
}

/** Thrown by a handler to dead-letter the message at once (it can never succeed). */
export class PoisonMessageError extends Error implements CodedError {
  readonly code = 'MESSAGE_POISON';
  readonly retryable = false;
  constructor(message: string) {
    super(message);
    this.name = 'PoisonMessageError';
  }
}

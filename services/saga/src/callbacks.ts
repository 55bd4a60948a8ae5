import {
  CALLBACK_ATTEMPT_HEADER,
  CALLBACK_DELIVERY_HEADER,
  CALLBACK_EVENT_HEADER,
  CALLBACK_SIGNATURE_HEADER,
  MessageValidators,
  RoutingKeys,
  callbackAttemptMessageId,
  callbackDeliveryId,
  equalJitterBackoff,
  firstCallbackDelivery,
  signCallback,
  type CallbackDelivery,
  type JobCompleted,
  type Validator,
} from '@lookup/contracts';
import type { Logger } from '@lookup/logging';
import { PoisonMessageError, type ReceivedMessage } from '@lookup/messaging';
import type { CallbackStore, JobStore } from '@lookup/store';
import type { SendOutcome } from './callback-sender.ts';

export interface CallbackDispatcherDeps {
  jobs: Pick<JobStore, 'getCallback' | 'getDocument' | 'getStatus'>;
  deliveries: Pick<CallbackStore, 'claim' | 'recordAttempt' | 'setState' | 'get'>;
  send: (url: string, body: string, headers: Record<string, string>) => Promise<SendOutcome>;
  /** Sends the delivery's next attempt through the broker's delay queue (Publishers.callbackRetry). */
  publishRetry: (delivery: CallbackDelivery, delayMs: number) => Promise<void>;
  /** CALLBACK_SECRET. */
  secret: string;
  /** CALLBACK_MAX_ATTEMPTS; the backoff is the lookups' (RETRY_BASE_DELAY_MS doubling, capped at RETRY_MAX_DELAY_MS). */
  maxAttempts: number;
  backoff: { baseMs: number; maxMs: number };
  logger: Logger;
  now?: () => number;
}

/** Every attempt failed: the delivery message goes to the dead-letter queue with this as its reason. */
export class CallbackUndeliverable extends Error {
  readonly code = 'CALLBACK_UNDELIVERABLE';
  readonly retryable = false;
}

export type CallbackMessage = JobCompleted | CallbackDelivery;

/**
 * Completion callbacks, in the saga process: its own durable queue (`<ns>.callbacks`) takes the first attempt of each
 * job's callback (`callback.deliver`, sent only for a job that has one, by whoever ended it: the saga on completion or
 * at the deadline, the API on cancel) and the deliveries' retries back from their delay queue. A job whose callback
 * asks for that event gets one delivery (claimed once in Redis: a duplicate first attempt sends nothing, a redelivered
 * one sends again: at-least-once, with a stable delivery id); each attempt is recorded; a failure is retried through
 * the broker with backoff, and dead-lettered after `maxAttempts`. A job.completed still queued from before the upgrade
 * (the queue used to take every one) is handled as that job's first attempt.
 */
export function createCallbackDispatcher(deps: CallbackDispatcherDeps) {
  const { jobs, deliveries, logger, now = Date.now } = deps;

  /**
   * Whoever can publish to the broker can put a callback.deliver on the queue. What is sent never comes from the message
   * (the URL and the body are the stored job's), and the message must match the job's own delivery: its id is the one
   * derived from the job and event (the receivers' de-duplication key, so no message mints a new one), and the job has
   * ended with that event. Anything else is dead-lettered with the reason.
   */
  function checkDeliveryId(d: CallbackDelivery): void {
    const expected = callbackDeliveryId(d.jobId, d.event);
    if (d.deliveryId !== expected) {
      throw new PoisonMessageError(`callback.deliver with delivery id ${JSON.stringify(d.deliveryId.slice(0, 140))}, not job ${d.jobId}'s (${expected})`);
    }
  }

  /** A job's first attempt: claimed once, skipped when the callback did not ask for the event. */
  async function first(d: CallbackDelivery, redelivered: boolean): Promise<void> {
    checkDeliveryId(d);
    const [callback, status] = await Promise.all([jobs.getCallback(d.jobId), jobs.getStatus(d.jobId)]);
    if (!callback) return;
    const log = logger.child({ jobId: d.jobId, event: d.event });
    const ended = status === 'Completed' ? 'completed' : status === 'Cancelled' ? 'cancelled' : undefined;
    if (ended !== d.event) {
      // Whoever ends a job records the end before sending its callback.deliver, so a genuine one always finds it.
      throw new PoisonMessageError(
        ended ? `callback.deliver for event '${d.event}', but job ${d.jobId} ended ${ended}` : `callback.deliver for job ${d.jobId}, which has not ended (status ${status ?? 'missing'})`,
      );
    }
    if (!callback.events.includes(d.event)) {
      await deliveries.setState(d.jobId, 'skipped');
      log.info('job ended with an event its callback did not ask for; nothing sent');
      return;
    }
    if (!(await deliveries.claim(d.jobId, d.deliveryId, d.event)) && !redelivered) {
      log.debug('duplicate first attempt; the callback was already dispatched');
      return;
    }
    await attempt(d);
  }

  function onJobCompleted(message: ReceivedMessage<JobCompleted>): Promise<void> {
    const { jobId, status } = message.body;
    return first(firstCallbackDelivery(jobId, status, new Date(now()).toISOString()), message.redelivered);
  }

  async function attempt(d: CallbackDelivery): Promise<void> {
    const log = logger.child({ jobId: d.jobId, deliveryId: d.deliveryId, attempt: d.attempt });
    const [callback, job] = await Promise.all([jobs.getCallback(d.jobId), jobs.getDocument(d.jobId)]);
    if (!callback || !job) {
      log.warn('callback delivery for a job that no longer exists (expired?); dropping it');
      return;
    }
    const body = JSON.stringify({ deliveryId: d.deliveryId, event: d.event, job });
    const timestamp = Math.floor(now() / 1000);
    const outcome = await deps.send(callback.url, body, {
      [CALLBACK_SIGNATURE_HEADER]: signCallback(deps.secret, timestamp, body),
      [CALLBACK_DELIVERY_HEADER]: d.deliveryId,
      [CALLBACK_EVENT_HEADER]: d.event,
      [CALLBACK_ATTEMPT_HEADER]: String(d.attempt),
    });
    const last = !outcome.retryable || d.attempt >= deps.maxAttempts;
    const state = outcome.ok ? 'delivered' : last ? 'dead-lettered' : 'retrying';
    await deliveries.recordAttempt(
      d.jobId,
      { attempt: d.attempt, at: new Date(now()).toISOString(), event: d.event, statusCode: outcome.statusCode, ok: outcome.ok, error: outcome.error, durationMs: outcome.durationMs },
      state,
    );
    if (outcome.ok) {
      log.info({ statusCode: outcome.statusCode }, 'callback delivered');
      return;
    }
    if (last) {
      log.warn({ err: outcome.error }, 'callback undeliverable; dead-lettering it');
      throw new CallbackUndeliverable(`callback to ${callback.url} failed ${d.attempt} time(s); last: ${outcome.error}`);
    }
    const delayMs = equalJitterBackoff(d.attempt - 1, deps.backoff.baseMs, deps.backoff.maxMs);
    await deps.publishRetry(
      { ...d, attempt: d.attempt + 1, messageId: callbackAttemptMessageId(d.jobId, d.event, d.attempt + 1), occurredAt: new Date(now()).toISOString() },
      delayMs,
    );
    log.info({ err: outcome.error, retryInMs: delayMs }, 'callback attempt failed; retry scheduled');
  }

  /**
   * A later attempt (back from its delay queue, or a dead letter replayed): only of a delivery the dispatcher started
   * (claimed with this id) and that has not succeeded. A redelivered retry of a delivery that succeeded meanwhile sends
   * nothing more.
   */
  async function retry(d: CallbackDelivery): Promise<void> {
    checkDeliveryId(d);
    const record = await deliveries.get(d.jobId);
    if (record.deliveryId !== d.deliveryId) {
      throw new PoisonMessageError(`callback.deliver attempt ${d.attempt} for job ${d.jobId}, whose delivery ${d.deliveryId} was never started`);
    }
    if (record.state === 'delivered') {
      logger.info({ jobId: d.jobId, deliveryId: d.deliveryId, attempt: d.attempt }, 'callback already delivered; this attempt sends nothing');
      return;
    }
    await attempt(d);
  }

  function validatorFor(routingKey: string): Validator<CallbackMessage> | undefined {
    if (routingKey === RoutingKeys.jobCompleted) return MessageValidators.jobCompleted;
    if (routingKey === RoutingKeys.callbackDelivery) return MessageValidators.callbackDelivery;
    return undefined;
  }

  function handle(message: ReceivedMessage<CallbackMessage>): Promise<void> {
    const routingKey = message.raw.fields.routingKey;
    if (routingKey === RoutingKeys.jobCompleted) return onJobCompleted(message as ReceivedMessage<JobCompleted>);
    if (routingKey === RoutingKeys.callbackDelivery) {
      const d = (message as ReceivedMessage<CallbackDelivery>).body;
      // A dead letter replayed by an operator (x-replayed-at) is a later attempt of a delivery already claimed, whatever
      // its number: with CALLBACK_MAX_ATTEMPTS=1 the dead-lettered message is the first attempt itself.
      const replayed = message.headers?.['x-replayed-at'] !== undefined;
      return d.attempt === 1 && !replayed ? first(d, message.redelivered) : retry(d);
    }
    throw new PoisonMessageError(`the callback queue takes no '${routingKey}' messages`);
  }

  return { handle, validatorFor, onJobCompleted, attempt };
}

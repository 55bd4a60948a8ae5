import { ROOT_CONTEXT, propagation, type TextMapGetter } from '@opentelemetry/api';
import type { ConsumeMessage } from 'amqplib';
import { SpanKind, SpanStatusCode, context, recordSpanError, trace, tracer, type Attributes } from '@lookup/logging';

/**
 * W3C trace context across the broker, in one place: every publish (Broker.publish) runs in a PRODUCER span whose
 * context is injected into the message's AMQP headers (`traceparent`, `tracestate`), and every delivery is handled
 * in a CONSUMER span that continues the context extracted from them. A command's retry is published from inside
 * the failed attempt's span, so every attempt of a job lands in the job's one trace. The Broker calls these only
 * when the process traces (tracingActive()); otherwise it publishes and consumes without touching a header.
 */

/** Reads a header as the propagator wants it: amqplib may hand a long string over as a Buffer. */
const headerGetter: TextMapGetter<Record<string, unknown>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const value = carrier[key];
    if (typeof value === 'string') return value;
    return Buffer.isBuffer(value) ? value.toString('utf8') : undefined;
  },
};

function messageAttributes(exchange: string, routingKey: string, messageId: unknown, jobId: unknown): Attributes {
  const attributes: Attributes = {
    'messaging.system': 'rabbitmq',
    'messaging.destination.name': exchange,
    'messaging.rabbitmq.destination.routing_key': routingKey,
  };
  if (messageId !== undefined) attributes['messaging.message.id'] = String(messageId);
  if (jobId !== undefined) {
    attributes['messaging.message.conversation_id'] = String(jobId);
    attributes['lookup.job_id'] = String(jobId);
  }
  return attributes;
}

/**
 * Runs `send` in a PRODUCER span `publish <routingKey>` (a child of the active span), handing it the message
 * headers with the span's context injected; the span ends when the broker confirmed (or refused) the message.
 */
export async function tracePublish<T>(
  exchange: string,
  routingKey: string,
  message: { messageId: string; correlationId: string; headers?: Record<string, unknown> },
  send: (headers: Record<string, unknown>) => Promise<T>,
): Promise<T> {
  const active = context.active();
  const span = tracer.startSpan(`publish ${routingKey}`, { kind: SpanKind.PRODUCER, attributes: messageAttributes(exchange, routingKey, message.messageId, message.correlationId) }, active);
  const headers: Record<string, unknown> = { ...message.headers };
  propagation.inject(trace.setSpan(active, span), headers);
  try {
    return await send(headers);
  } catch (err) {
    recordSpanError(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/**
 * Handles one delivery in a CONSUMER span `process <routingKey>` whose parent is the context its headers carry
 * (the publisher's span), so the handler's own spans, log lines and publishes join the sender's trace.
 */
export async function traceDelivery(msg: ConsumeMessage, queue: string, handle: () => Promise<void>): Promise<void> {
  const parent = propagation.extract(ROOT_CONTEXT, (msg.properties.headers ?? {}) as Record<string, unknown>, headerGetter);
  const attributes = messageAttributes(msg.fields.exchange, msg.fields.routingKey, msg.properties.messageId, msg.properties.correlationId);
  attributes['messaging.destination.subscription.name'] = queue;
  attributes['messaging.rabbitmq.message.redelivered'] = msg.fields.redelivered;
  const span = tracer.startSpan(`process ${msg.fields.routingKey}`, { kind: SpanKind.CONSUMER, attributes }, parent);
  try {
    await context.with(trace.setSpan(parent, span), handle);
  } catch (err) {
    recordSpanError(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/** Marks the delivery being handled as failed (the message was dead-lettered or requeued), if it is traced. */
export function noteDeliveryFailure(what: 'dead-lettered' | 'requeued', reason: string): void {
  const span = trace.getActiveSpan();
  if (!span) return;
  span.addEvent(what, { reason });
  span.setStatus({ code: SpanStatusCode.ERROR, message: `${what}: ${reason}` });
}

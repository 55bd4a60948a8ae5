import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { ConsumeMessage } from 'amqplib';
import { tracingActive, withSpan } from '@lookup/logging';
import { traceDelivery, tracePublish } from './trace-context.ts';

/** A delivery as amqplib hands it over, carrying `headers`. */
function delivery(headers: Record<string, unknown>, routingKey = 'lookup.rdap'): ConsumeMessage {
  return {
    content: Buffer.from('{}'),
    fields: { deliveryTag: 1, redelivered: false, exchange: 'ns.commands', routingKey, consumerTag: 'c' },
    properties: { headers, messageId: 'm-1', correlationId: 'job-1' },
  } as unknown as ConsumeMessage;
}

describe('trace context without a tracer provider', () => {
  it('reports tracing off, and withSpan just runs its function', async () => {
    expect(tracingActive()).toBe(false);
    expect(await withSpan('step', {}, async (span) => span)).toBeUndefined();
  });
});

describe('trace context across the broker', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const contextManager = new AsyncLocalStorageContextManager();

  beforeAll(() => {
    context.setGlobalContextManager(contextManager.enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(provider);
  });

  afterAll(() => {
    trace.disable();
    propagation.disable();
    context.disable();
  });

  it('injects the producer span into the headers, and the consumer continues it, through a retry too', async () => {
    expect(tracingActive()).toBe(true);
    const sent: Record<string, unknown>[] = [];
    const publish = (routingKey: string) =>
      tracePublish('ns.commands', routingKey, { messageId: 'm-1', correlationId: 'job-1', headers: { 'x-keep': 'yes' } }, async (headers) => {
        sent.push(headers);
      });

    await withSpan('saga dispatch commands', {}, () => publish('lookup.rdap'));
    expect(sent[0]).toMatchObject({ 'x-keep': 'yes', traceparent: expect.stringMatching(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/) });

    // Attempt 1 is consumed and schedules attempt 2 from inside its span; amqplib may hand a header over as a Buffer.
    await traceDelivery(delivery({ traceparent: Buffer.from(String(sent[0]!.traceparent)) }), 'ns.lookup.rdap', () => publish('rdap.delay.16ms'));
    await traceDelivery(delivery(sent[1]!), 'ns.lookup.rdap', async () => undefined);

    const spans = exporter.getFinishedSpans();
    const byName = (name: string) => spans.filter((s) => s.name === name);
    expect(new Set(spans.map((s) => s.spanContext().traceId)).size).toBe(1);
    const [dispatch] = byName('saga dispatch commands');
    const [firstPublish] = byName('publish lookup.rdap');
    const [retryPublish] = byName('publish rdap.delay.16ms');
    const [attempt1, attempt2] = byName('process lookup.rdap');
    expect(firstPublish!.parentSpanContext?.spanId).toBe(dispatch!.spanContext().spanId);
    expect(attempt1!.parentSpanContext?.spanId).toBe(firstPublish!.spanContext().spanId);
    expect(retryPublish!.parentSpanContext?.spanId).toBe(attempt1!.spanContext().spanId);
    expect(attempt2!.parentSpanContext?.spanId).toBe(retryPublish!.spanContext().spanId);
    expect(attempt1!.attributes).toMatchObject({ 'messaging.system': 'rabbitmq', 'messaging.destination.subscription.name': 'ns.lookup.rdap', 'lookup.job_id': 'job-1' });
  });

  it('starts a new trace for a message without trace context, and marks a failed publish', async () => {
    exporter.reset();
    await traceDelivery(delivery({}), 'ns.saga', async () => {
      await expect(tracePublish('ns.events', 'task.completed', { messageId: 'm-2', correlationId: 'job-2' }, () => Promise.reject(new Error('nacked')))).rejects.toThrow('nacked');
    });
    const [publish, consume] = exporter.getFinishedSpans();
    expect(consume!.parentSpanContext).toBeUndefined();
    expect(publish!.parentSpanContext?.spanId).toBe(consume!.spanContext().spanId);
    expect(publish!.status).toMatchObject({ code: 2, message: 'nacked' });
  });
});

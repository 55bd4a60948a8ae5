import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { FastifyOtelInstrumentation } from '@fastify/otel';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { TracingConfig } from '@lookup/config';

/** Paths probed all the time (health checks, scrapes): no trace for them. */
const UNTRACED_PATH = /^\/(health\/|metrics(\?|$))/;

/** The OTLP/HTTP span exporter of the configured encoding (only that one is loaded). */
async function otlpExporter(protocol: TracingConfig['protocol']): Promise<SpanExporter> {
  if (protocol === 'http/json') return new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter();
  return new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter();
}

/**
 * Starts tracing with the OpenTelemetry SDK's trace packages (the sdk-node 0.223 line: sdk-trace-node 2.12, not
 * NodeSDK itself, which loads every exporter of every signal, gRPC included, for about half a CPU-second more
 * per process start): a NodeTracerProvider (AsyncLocalStorage context, W3C trace context and baggage, the sampler
 * of OTEL_TRACES_SAMPLER/_ARG, the batch limits of OTEL_BSP_*), spans exported over OTLP/HTTP as the exporter
 * reads OTEL_EXPORTER_OTLP_* (endpoint, headers, timeout), and the instrumentations: Fastify (@fastify/otel,
 * hooked at fastify's initialization), node's http server and client, undici (fetch: RDAP) and ioredis; Redis
 * and outbound HTTP only inside a trace (no root spans for heartbeats and sweeps). Traces only: metrics are
 * prom-client's, logs are pino's lines (with traceId).
 */
export async function startTracing(tracing: TracingConfig, serviceName: string): Promise<NodeTracerProvider> {
  const resource = defaultResource()
    .merge(detectResources({ detectors: [envDetector] }))
    .merge(resourceFromAttributes({ 'service.name': serviceName }));
  const provider = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(await otlpExporter(tracing.protocol))] });
  provider.register();
  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req) => UNTRACED_PATH.test(req.url ?? ''),
        requireParentforOutgoingSpans: true,
      }),
      new UndiciInstrumentation({ requireParentforSpans: true }),
      new IORedisInstrumentation({ requireParentSpan: true }),
      new FastifyOtelInstrumentation({ registerOnInitialization: true, ignorePaths: (route) => UNTRACED_PATH.test(route.url) }),
    ],
  });
  return provider;
}

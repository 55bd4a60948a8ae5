import { ProxyTracerProvider, SpanKind, SpanStatusCode, context, trace, type Attributes, type Span, type TracerProvider } from '@opentelemetry/api';

/**
 * The suite's own spans (OpenTelemetry API only). The SDK is started, or not, by @lookup/telemetry before a
 * service's code is loaded (`--import`); without it every call here is the API's no-op, and the helpers below
 * check `tracingActive()` first so a process that does not trace does no span work at all.
 */
export const tracer = trace.getTracer('@lookup/suite');

export { SpanKind, SpanStatusCode, context, trace, type Span, type Attributes };

/** The provider the SDK registered, or undefined when none was (the API's no-op provider). */
function registeredProvider(): TracerProvider | undefined {
  const provider = trace.getTracerProvider();
  if (!(provider instanceof ProxyTracerProvider)) return provider;
  const delegate = provider.getDelegate();
  return delegate === NOOP_PROVIDER ? undefined : delegate;
}
/** The API's no-op provider: what an empty ProxyTracerProvider delegates to. */
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

/** Whether a tracer provider (the SDK) is registered in this process. */
export function tracingActive(): boolean {
  return registeredProvider() !== undefined;
}

/** `traceId` and `spanId` of the active span, for log lines; empty when no span is active. */
export function activeTraceFields(): { traceId?: string; spanId?: string } {
  const span = trace.getSpan(context.active());
  if (!span) return {};
  const { traceId, spanId } = span.spanContext();
  return { traceId, spanId };
}

/** Marks a span failed with the error (message, type, stack as an exception event). */
export function recordSpanError(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

/**
 * Runs fn inside a new active span (a child of the active one), ended when fn settles; an error marks it failed
 * and is rethrown. Without a registered tracer provider fn runs directly.
 */
export async function withSpan<T>(name: string, attributes: Attributes, fn: (span?: Span) => Promise<T>, kind: SpanKind = SpanKind.INTERNAL): Promise<T> {
  if (!tracingActive()) return fn();
  return tracer.startActiveSpan(name, { kind, attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      recordSpanError(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

/** Exports the spans still buffered (a shutdown step: a process that exits drops what it has not sent). */
export async function flushTraces(): Promise<void> {
  const provider = registeredProvider() as (TracerProvider & { forceFlush?: () => Promise<void> }) | undefined;
  await provider?.forceFlush?.();
}

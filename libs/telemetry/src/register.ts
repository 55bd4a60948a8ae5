/**
 * The `--import` module of every service (`node --import ./libs/telemetry/dist/src/register.js ...`, each
 * `start:<name>` script): runs before the service's own modules are loaded, so the instrumentations can hook
 * them. Without OTEL_EXPORTER_OTLP_ENDPOINT it does nothing else: the SDK is not loaded, the OpenTelemetry API
 * stays its no-op, and the suite's own span code is skipped (tracingActive() in @lookup/logging).
 */
import { register } from 'node:module';
import { ConfigError, loadTracingConfig, type TracingConfig } from '@lookup/config';
import { defaultServiceName } from './service-name.ts';

function tracingConfigOrExit(): Readonly<TracingConfig> {
  try {
    return loadTracingConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(78); // EX_CONFIG, as the service would
  }
}

const tracing = tracingConfigOrExit();
if (tracing.otlpEndpoint !== undefined) {
  // ESM: import-in-the-middle's loader hook, told which modules the instrumentations hook (and only those).
  const { createAddHookMessageChannel } = await import('import-in-the-middle');
  const { registerOptions, waitForAllMessagesAcknowledged } = createAddHookMessageChannel();
  register('import-in-the-middle/hook.mjs', import.meta.url, registerOptions);
  const { startTracing } = await import('./sdk.ts');
  await startTracing(tracing, tracing.serviceName ?? defaultServiceName(process.argv[1]));
  await waitForAllMessagesAcknowledged();
}

import type { Config } from '@lookup/config';
import type { Logger } from '@lookup/logging';
import { enableProcessMetrics } from './registry.ts';
import { startMetricsListener, type MetricsListener, type Readiness } from './listener.ts';

export interface ServeMetricsOptions {
  config: Pick<Config, 'metricsHost' | 'metricsPort'>;
  logger: Logger;
  readiness: Readiness;
}

/**
 * A service process's metrics and health listener on METRICS_HOST:METRICS_PORT, with the default process metrics.
 * A port already taken (several workers started by hand on one host) falls back to an ephemeral port, logged; an
 * address that cannot be listened on at all is a configuration error: logged, and the process exits 78 (EX_CONFIG).
 */
export async function serveMetrics({ config, logger, readiness }: ServeMetricsOptions): Promise<MetricsListener> {
  enableProcessMetrics();
  try {
    return await startMetricsListener({ host: config.metricsHost, port: config.metricsPort, readiness, logger, fallbackWhenInUse: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    logger.fatal({ code, host: config.metricsHost, port: config.metricsPort }, `cannot listen on METRICS_HOST ${config.metricsHost} METRICS_PORT ${config.metricsPort}: ${(err as Error).message}`);
    logger.flush?.();
    process.exit(78);
  }
}

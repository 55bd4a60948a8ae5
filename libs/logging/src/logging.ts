import { pino, type Logger, type LoggerOptions } from 'pino';
import { describeConfig, type Config } from '@lookup/config';
import { prettyDestination } from './pretty.ts';
import { activeTraceFields, tracingActive } from './tracing.ts';

export type { Logger } from 'pino';

/** How log lines are written: JSON lines, human-readable lines, or pretty when stdout is a terminal. */
export type LogFormat = 'json' | 'pretty' | 'auto';

export interface LoggerDeps {
  /** The process's name (`api`, `saga`, `worker-ping`...): the only `service` field of every line. */
  service: string;
  level: string;
  /** LOG_FORMAT: 'auto' (the default) is pretty on a terminal, JSON otherwise. Ignored with `destination`. */
  format?: LogFormat;
  /** Where log lines go; stdout by default. */
  destination?: pino.DestinationStream;
}

/** Whether `format` renders pretty lines, given whether stdout is a terminal. */
export function isPretty(format: LogFormat | undefined, stdoutIsTty: boolean = process.stdout.isTTY === true): boolean {
  return format === 'pretty' || (format === 'auto' && stdoutIsTty);
}

/**
 * The root logger of a process: JSON lines with `service` (the process name), `pid` and ISO time; lines about
 * one lookup service carry it as `lookupService`, never as a second `service` key. When the process traces
 * (@lookup/telemetry started the SDK), a line written inside a span carries its `traceId` and `spanId`.
 */
export function createLogger({ service, level, format = 'json', destination }: LoggerDeps): Logger {
  const options: LoggerOptions = {
    level,
    base: { service, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: ['*.password', '*.apiKey', 'headers.authorization', 'headers["x-api-key"]'], censor: '***' },
    // Decided once: a process that does not trace pays nothing per line.
    mixin: tracingActive() ? activeTraceFields : undefined,
  };
  if (destination) return pino(options, destination);
  if (isPretty(format)) return pino(options, prettyDestination(process.stdout, { colour: process.stdout.isTTY === true }));
  return pino(options);
}

/**
 * The start-up lines of a process: one compact info line (`starting`, with the namespace and what `extra` adds),
 * and the whole configuration (secrets masked) at debug level.
 */
export function logStartup(logger: Logger, config: Config, extra: Record<string, unknown> = {}): void {
  logger.info({ namespace: config.namespace, logLevel: config.logLevel, node: process.version, traces: tracingActive() ? 'on' : 'off', ...extra }, 'starting');
  logger.debug({ config: describeConfig(config) }, 'configuration');
}

import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

export interface LoggerDeps {
  service: string;
  level: string;
  /** Where log lines go; stdout by default. */
  destination?: pino.DestinationStream;
}

/** The root logger of a process: JSON lines with `service`, `pid` and ISO time. */
export function createLogger({ service, level, destination }: LoggerDeps): Logger {
  const options: LoggerOptions = {
    level,
    base: { service, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: ['*.password', '*.apiKey', 'headers.authorization', 'headers["x-api-key"]'], censor: '***' },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** Per-message child logger: every line about a job carries its id. */
export function jobLogger(
  logger: Logger,
  fields: { jobId: string; messageId?: string; service?: string | number },
): Logger {
  return logger.child(fields);
}

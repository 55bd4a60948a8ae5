/**
 * Human-readable log lines for a terminal (LOG_FORMAT=pretty, or a TTY with LOG_FORMAT unset): one line per
 * entry, `HH:MM:SS.mmm LEVEL service[pid] message key=value ...`, an error's stack on the lines below. The JSON
 * lines (every other case) carry exactly the same fields; this is only another rendering of them.
 */

const LEVEL_NAMES: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
const LEVEL_COLOURS: Record<string, string> = { trace: '90', debug: '36', info: '32', warn: '33', error: '31', fatal: '35' };
/** Fields shown in the line's head, not repeated as key=value. */
const HEAD = new Set(['level', 'time', 'service', 'pid', 'msg', 'hostname', 'v']);

export interface PrettyOptions {
  /** ANSI colours for the level (a terminal). */
  colour?: boolean;
}

function value(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (v === undefined) return 'undefined';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function clock(time: unknown): string {
  const d = typeof time === 'number' || typeof time === 'string' ? new Date(time) : undefined;
  if (!d || Number.isNaN(d.getTime())) return '--:--:--.---';
  return d.toISOString().slice(11, 23);
}

/**
 * Renders one JSON log line (pino's output) for a human; a line that is not a JSON object is returned as it is.
 * The result ends with a newline.
 */
export function prettyLine(line: string, options: PrettyOptions = {}): string {
  const text = line.endsWith('\n') ? line.slice(0, -1) : line;
  let entry: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return `${text}\n`;
    entry = parsed as Record<string, unknown>;
  } catch {
    return `${text}\n`;
  }
  const rawLevel = entry.level;
  const level = (typeof rawLevel === 'number' ? LEVEL_NAMES[rawLevel] : typeof rawLevel === 'string' ? rawLevel : undefined) ?? 'info';
  const label = level.toUpperCase().padEnd(5);
  const shownLevel = options.colour && LEVEL_COLOURS[level] ? `\u001b[${LEVEL_COLOURS[level]}m${label}\u001b[39m` : label;
  const who = entry.service !== undefined ? `${value(entry.service)}${entry.pid !== undefined ? `[${value(entry.pid)}]` : ''}` : '';
  const parts = [clock(entry.time), shownLevel, who, typeof entry.msg === 'string' ? entry.msg : entry.msg === undefined ? '' : value(entry.msg)].filter((p) => p !== '');
  let stack = '';
  for (const [key, v] of Object.entries(entry)) {
    if (HEAD.has(key)) continue;
    if (key === 'err' && typeof v === 'object' && v !== null && typeof (v as { stack?: unknown }).stack === 'string') {
      const err = v as { message?: unknown; stack: string };
      parts.push(`err=${value(err.message ?? '')}`);
      stack = `\n    ${err.stack.split('\n').join('\n    ')}`;
      continue;
    }
    parts.push(`${key}=${value(v)}`);
  }
  return `${parts.join(' ')}${stack}\n`;
}

/** A pino destination that writes pretty lines to `out` (stdout by default). */
export function prettyDestination(out: { write(chunk: string): unknown } = process.stdout, options: PrettyOptions = {}): { write(line: string): void } {
  // A closed stdout (the reader is gone: EPIPE) drops lines rather than crashing the process, as pino's own
  // destination does.
  if (out === process.stdout && process.stdout.listenerCount('error') === 0) process.stdout.on('error', () => undefined);
  return {
    write(line: string) {
      try {
        out.write(prettyLine(line, options));
      } catch {
        // a closed stdout (EPIPE): nothing useful to do
      }
    },
  };
}

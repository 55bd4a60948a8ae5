import { describe, expect, it } from 'vitest';
import { createLogger, isPretty } from './logging.ts';
import { prettyLine } from './pretty.ts';

describe('pretty log lines', () => {
  it('renders a JSON line as time, level, service[pid], message and the other fields', () => {
    const line = JSON.stringify({ level: 'info', time: '2026-01-02T03:04:05.678Z', service: 'worker-ping', pid: 42, jobId: 'j-1', lookupService: 'Ping', msg: 'lookup done' });
    expect(prettyLine(line)).toBe('03:04:05.678 INFO  worker-ping[42] lookup done jobId=j-1 lookupService=Ping\n');
  });

  it('quotes values with spaces, shows objects as JSON, prints an error stack below the line', () => {
    const line = JSON.stringify({ level: 'error', time: 0, service: 'api', pid: 1, msg: 'failed', reason: 'two words', n: { a: 1 }, err: { message: 'x', stack: 'Error: x\n    at f' } });
    expect(prettyLine(line)).toBe('00:00:00.000 ERROR api[1] failed reason="two words" n={"a":1} err=x\n    Error: x\n        at f\n');
  });

  it('colours the level only when asked, and passes a line that is not a JSON object through', () => {
    expect(prettyLine(JSON.stringify({ level: 'warn', time: 0, msg: 'm' }), { colour: true })).toContain('\u001b[33mWARN \u001b[39m');
    expect(prettyLine('plain text')).toBe('plain text\n');
    expect(prettyLine('[1,2]')).toBe('[1,2]\n');
  });

  it('renders what createLogger writes (numeric pino levels too)', () => {
    const out: string[] = [];
    const logger = createLogger({ service: 'saga', level: 'info', destination: { write: (l: string) => void out.push(prettyLine(l)) } });
    logger.warn({ jobId: 'j' }, 'hello');
    expect(out[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN  saga\[\d+\] hello jobId=j\n$/);
    expect(prettyLine(JSON.stringify({ level: 50, time: 0, msg: 'x' }))).toBe('00:00:00.000 ERROR x\n');
  });

  it('LOG_FORMAT auto is pretty only on a terminal; json never; pretty always', () => {
    expect(isPretty('auto', true)).toBe(true);
    expect(isPretty('auto', false)).toBe(false);
    expect(isPretty('json', true)).toBe(false);
    expect(isPretty('pretty', false)).toBe(true);
  });
});

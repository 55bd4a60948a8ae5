import { setMaxListeners } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { CommandLauncher } from './launcher.ts';

const launcher = new CommandLauncher();
afterAll(() => launcher.close());
const never = new AbortController().signal;
// One signal shared by 40 concurrent runs here (each lookup has its own in the worker): no leak warning.
setMaxListeners(0, never);

describe('CommandLauncher', () => {
  it('keeps the output of concurrent runs apart, with their exit codes', async () => {
    const runs = await Promise.all(
      Array.from({ length: 40 }, (_, i) => launcher.run(['printf', `line-${i}-a\\nline-${i}-b\\n`], never, 5000)),
    );
    runs.forEach((r, i) => expect(r).toEqual({ code: 0, output: `line-${i}-a\nline-${i}-b` }));
    expect(await launcher.run(['false'], never, 5000)).toMatchObject({ code: 1 });
  });

  it('reports a command that does not exist with the shell code 127', async () => {
    const r = await launcher.run(['/nonexistent/ping'], never, 5000);
    expect(r.code).toBe(127);
  });

  it('stops waiting on abort and on timeout, and keeps working afterwards', async () => {
    const ctl = new AbortController();
    const aborted = launcher.run(['sleep', '1'], ctl.signal, 5000);
    ctl.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'ABORT_ERR' });
    await expect(launcher.run(['sleep', '1'], never, 50)).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(await launcher.run(['echo', 'still-here'], never, 5000)).toEqual({ code: 0, output: 'still-here' });
  });

  it('refuses arguments with whitespace (callers fall back to execFile)', () => {
    expect(CommandLauncher.accepts(['ping', '-c', '1', '127.0.0.1'])).toBe(true);
    expect(CommandLauncher.accepts(['ping', '127.0.0.1; rm -rf /'])).toBe(false);
    expect(CommandLauncher.accepts(['a\nb'])).toBe(false);
  });
});

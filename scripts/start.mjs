#!/usr/bin/env node
// Process supervisor for local runs and for the container image (`npm start`, the Dockerfile's CMD).
//
// Every `start:<name>` script in the root package.json is one service. Each one runs as its own child process,
// spawned from the script's argv directly (not through `npm run`, so signals reach the node process itself).
//
// Output: every line stays what it was, one JSON object per line (each carries `service`, the process name), so
// `npm start -s | jq` and pino-pretty work. A line a child prints that is not JSON (a Node warning, a crash's
// stack) is wrapped into one, with the child's name as `service`. The supervisor's own lines are JSON lines too
// (`"service":"start"`). LOG_FORMAT=pretty, or LOG_FORMAT unset/auto with stdout a terminal: human-readable lines
// instead (the children are started with LOG_FORMAT=pretty).
//
// Shutdown: SIGINT, SIGTERM or SIGHUP sends SIGTERM to every child, waits up to 15 s, then SIGKILLs whatever is
// left and exits (0 when every child stopped in time and cleanly). A second signal skips the wait. The same
// happens when the supervisor's parent exits (e.g. `npm start` killed by a signal its shell did not pass on), so
// nothing keeps running orphaned; and each child stops by itself when the supervisor dies (EXIT_WITH_PARENT).
//
// Metrics ports: the saga, each worker and the resource worker serve /metrics and /health/* on METRICS_PORT (the API
// serves them on API_PORT). On one host they cannot share a port, so each child gets its own: METRICS_PORT (default
// 9464) plus its position among the services other than the API, in package.json order whatever --only selects
// (saga 9464, geoip 9465, ping 9466, ...), printed in its `started` line. METRICS_PORT=0: every child an ephemeral
// port, printed in the child's own `metrics listening` line.
//
// Restart policy: a child that exits while we are not shutting down is logged and restarted with exponential
// backoff, 1 s doubling up to 30 s; the delay resets once a child has stayed up for 60 s. A child that exits 78
// (EX_CONFIG: a bad variable, a busy API_PORT) is not restarted: it would fail the same way. `--no-restart`
// disables restarts: the other services keep running, and the supervisor exits 1 (78 after a configuration
// error) once none is left.
//
// Plain Node ESM on purpose: it must run before (and without) any TypeScript loader.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const DEFAULT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SHUTDOWN_GRACE_MS = 15_000;
const BACKOFF_INITIAL_MS = 1_000;
const BACKOFF_MAX_MS = 30_000;
const BACKOFF_RESET_AFTER_MS = 60_000;
/** EX_CONFIG: what a service exits with on a configuration error; never restarted. */
export const EXIT_CONFIG = 78;
const PARENT_CHECK_MS = 500;
/** The default METRICS_PORT (libs/config): the first child's metrics port. */
export const DEFAULT_METRICS_PORT = 9464;
/** The service that serves /metrics on API_PORT and takes no METRICS_PORT. */
const HTTP_SERVICE = 'api';

/**
 * Each service's METRICS_PORT (name -> port) for `services` (every start:<name> script, in order): the base (env
 * METRICS_PORT, default 9464) plus the service's position among the non-API services; all 0 when the base is 0.
 * Throws on a METRICS_PORT that is not a port, or when the last port would pass 65535.
 */
export function metricsPorts(services, envPort) {
  const raw = envPort === undefined || envPort === '' ? String(DEFAULT_METRICS_PORT) : String(envPort).trim();
  if (!/^\d{1,5}$/.test(raw) || Number(raw) > 65535) throw new Error(`METRICS_PORT must be a port number (0-65535), got '${envPort}'`);
  const base = Number(raw);
  const ports = new Map();
  const others = services.filter((s) => s.name !== HTTP_SERVICE);
  if (base !== 0 && base + others.length - 1 > 65535) throw new Error(`METRICS_PORT ${base} leaves no room for ${others.length} services (up to 65535)`);
  others.forEach((s, i) => ports.set(s.name, base === 0 ? 0 : base + i));
  return ports;
}

/** Reads `start:<name>` scripts from a package.json object, in declaration order. */
export function readServices(pkg) {
  const scripts = (pkg && pkg.scripts) || {};
  const services = [];
  for (const [key, command] of Object.entries(scripts)) {
    const m = /^start:(.+)$/.exec(key);
    if (m) services.push({ name: m[1], command, argv: splitCommand(command) });
  }
  return services;
}

/**
 * Splits a script command into argv. Supports whitespace separation and single or double quotes; rejects shell
 * syntax (pipes, `&&`, redirections, variables, globs) since the command is exec'd without a shell.
 */
export function splitCommand(command) {
  const argv = [];
  let cur = '';
  let inToken = false;
  let quote = null;
  for (let i = 0; i < command.length; i++) {
    const c = command[i];
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < command.length) cur += command[++i];
      else cur += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inToken = true;
    } else if (/\s/.test(c)) {
      if (inToken) argv.push(cur);
      cur = '';
      inToken = false;
    } else if ('|&;<>()$`*?'.includes(c)) {
      throw new Error(`script command uses shell syntax (${JSON.stringify(c)}), which start.mjs cannot exec: ${command}`);
    } else {
      cur += c;
      inToken = true;
    }
  }
  if (quote) throw new Error(`unterminated quote in script command: ${command}`);
  if (inToken) argv.push(cur);
  if (argv.length === 0) throw new Error('empty script command');
  return argv;
}

function parseArgs(args) {
  const opts = { help: false, restart: true, only: null, root: DEFAULT_ROOT };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--help' || a === '-h') opts.help = true;
    else if (a === '--no-restart') opts.restart = false;
    else if (a === '--only' || a.startsWith('--only=')) {
      const value = a === '--only' ? args[++i] : a.slice('--only='.length);
      if (!value) throw new Error('--only needs a comma-separated list of service names');
      opts.only = value.split(',').map((s) => s.trim()).filter(Boolean);
    } else if (a === '--root' || a.startsWith('--root=')) {
      const value = a === '--root' ? args[++i] : a.slice('--root='.length);
      if (!value) throw new Error('--root needs a directory');
      opts.root = path.resolve(value);
    } else throw new Error(`unknown argument: ${a}`);
  }
  return opts;
}

function usage(services) {
  return [
    'Usage: node scripts/start.mjs [--only name[,name...]] [--no-restart] [--root DIR] [--help]',
    '',
    'Starts every service named by a `start:<name>` script in package.json as its own child process.',
    'Output: JSON lines (LOG_FORMAT=json), or human-readable ones on a terminal or with LOG_FORMAT=pretty.',
    '',
    '  --only a,b     start only these services',
    '  --no-restart   do not restart a service that exits (default: restart with backoff 1s..30s);',
    '                 the supervisor exits 1 when no service is left',
    '  --root DIR     read DIR/package.json and run the services in DIR (default: the repository root)',
    '  --help         this text',
    '',
    `Metrics: each service but the API serves /metrics and /health/* on METRICS_PORT (default ${DEFAULT_METRICS_PORT}) plus its`,
    'position among them (saga first); METRICS_PORT=0 gives each an ephemeral port. Each `started` line says which.',
    '',
    'SIGINT/SIGTERM/SIGHUP (or the parent process exiting): SIGTERM to every service, up to 15 s grace, then',
    'SIGKILL. Exit 0 on a clean shutdown. A service exiting 78 (configuration error) is not restarted.',
    '',
    `Services: ${services.map((s) => s.name).join(', ') || '(none found)'}`,
    '',
  ].join('\n');
}

/** Whether lines are rendered for a human: LOG_FORMAT=pretty, or LOG_FORMAT unset/auto and stdout a terminal. */
export function prettyWanted(env = process.env, stdoutIsTty = process.stdout.isTTY === true) {
  const format = (env.LOG_FORMAT || 'auto').trim().toLowerCase();
  return format === 'pretty' || (format === 'auto' && stdoutIsTty);
}

let pretty = false;

/** One log line in the services' shape: JSON, or human-readable when `pretty`. */
export function formatLine({ level = 'info', service, pid, msg, fields = {} }, asPretty = false, now = new Date()) {
  if (!asPretty) return `${JSON.stringify({ level, time: now.toISOString(), service, pid, ...fields, msg })}\n`;
  const extra = Object.entries(fields).map(([k, v]) => ` ${k}=${typeof v === 'string' && /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v)}`).join('');
  return `${now.toISOString().slice(11, 23)} ${level.toUpperCase().padEnd(5)} ${service}${pid !== undefined ? `[${pid}]` : ''} ${msg}${extra}\n`;
}

/** A problem with how the supervisor was called: plain text on stderr (nothing has started). */
function usageError(msg) {
  safeWrite(process.stderr, `start.mjs: ${msg}\n`);
}

function say(msg, level = 'info', fields = {}) {
  safeWrite(process.stdout, formatLine({ level, service: 'start', pid: process.pid, msg, fields }, pretty));
}

function safeWrite(stream, text) {
  try {
    stream.write(text);
  } catch {
    // stdout/stderr closed (EPIPE): nothing useful to do.
  }
}

/**
 * Passes a child's lines through: a JSON object line unchanged; any other line wrapped into a JSON line naming the
 * child (or, when pretty, stdout lines as they are, the child renders them itself, and stderr lines marked as the
 * child's).
 */
export function relayLine(line, { name, pid, stream }, asPretty = false) {
  if (asPretty) {
    return stream === 'stdout' ? `${line}\n` : formatLine({ level: 'warn', service: name, pid, msg: line, fields: { stream } }, true);
  }
  const trimmed = line.trim();
  if (trimmed.startsWith('{') && trimmed.endsWith('}')) {
    try {
      const v = JSON.parse(trimmed);
      if (v && typeof v === 'object' && !Array.isArray(v)) return `${line}\n`;
    } catch {
      // not JSON: wrapped below
    }
  }
  return formatLine({ level: stream === 'stderr' ? 'warn' : 'info', service: name, pid, msg: line, fields: { stream } }, false);
}

function pipeLines(stream, out, meta) {
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  rl.on('line', (line) => safeWrite(out, relayLine(line, meta, pretty)));
}

async function main() {
  // A closed stdout (e.g. `npm start | head`) must not crash the supervisor and orphan the children.
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});

  pretty = prettyWanted();
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    usageError(err.message);
    return 2;
  }
  const ROOT = opts.root;
  let services;
  try {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    services = readServices(pkg);
  } catch (err) {
    usageError(`cannot read services from ${path.join(ROOT, 'package.json')}: ${err.message}`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(usage(services));
    return 0;
  }
  let ports;
  try {
    ports = metricsPorts(services, process.env.METRICS_PORT);
  } catch (err) {
    usageError(err.message);
    return 2;
  }
  if (opts.only) {
    const known = new Set(services.map((s) => s.name));
    const unknown = opts.only.filter((n) => !known.has(n));
    if (unknown.length) {
      usageError(`unknown service(s) in --only: ${unknown.join(', ')} (known: ${[...known].join(', ')})`);
      return 2;
    }
    const wanted = new Set(opts.only);
    services = services.filter((s) => wanted.has(s.name));
  }
  if (services.length === 0) {
    usageError('no start:<name> scripts found in package.json; nothing to run');
    return 2;
  }

  // Like `npm run`: local binaries on PATH; otherwise the parent's environment unchanged.
  const env = {
    ...process.env,
    PATH: [path.join(ROOT, 'node_modules', '.bin'), process.env.PATH].filter(Boolean).join(path.delimiter),
  };
  // The children's stdout is a pipe: tell them to render for a human when we do.
  if (pretty) env.LOG_FORMAT = 'pretty';

  let shuttingDown = false;
  let unexpectedExit = false;
  let configError = false;
  /** name -> { svc, child, startedAt, delay, timer, exited } */
  const state = new Map();
  let resolveAllExited;
  const allExited = new Promise((r) => (resolveAllExited = r));

  const running = () => [...state.values()].filter((s) => s.child !== null);
  const checkDone = () => {
    const pending = [...state.values()].some((s) => s.child !== null || s.timer !== null);
    if (!pending) resolveAllExited();
  };

  function launch(s) {
    s.timer = null;
    const [cmd, ...args] = s.svc.argv;
    // `node` runs as this very node binary, so the version cannot differ from the supervisor's.
    const file = cmd === 'node' ? process.execPath : cmd;
    let child;
    try {
      child = spawn(file, args, { cwd: ROOT, env: s.env, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      onExit(s, null, null, err);
      return;
    }
    s.child = child;
    s.startedAt = Date.now();
    const meta = { name: s.svc.name, pid: child.pid };
    pipeLines(child.stdout, process.stdout, { ...meta, stream: 'stdout' });
    pipeLines(child.stderr, process.stderr, { ...meta, stream: 'stderr' });
    const metricsPort = ports.get(s.svc.name);
    const where = metricsPort === undefined ? '' : metricsPort === 0 ? '; metrics on an ephemeral port' : `; metrics on :${metricsPort}`;
    say(`${s.svc.name} started (pid ${child.pid ?? '?'}): ${s.svc.command}${where}`, 'info', {
      child: s.svc.name,
      childPid: child.pid,
      ...(metricsPort === undefined ? {} : { metricsPort }),
    });
    let finished = false;
    const done = (code, signal, err) => {
      if (finished) return;
      finished = true;
      onExit(s, code, signal, err);
    };
    child.on('error', (err) => done(null, null, err)); // e.g. ENOENT: spawn failed
    child.on('exit', (code, signal) => done(code, signal, null));
  }

  function onExit(s, code, signal, err) {
    s.child = null;
    const how = err ? `failed: ${err.message}` : signal ? `was killed by ${signal}` : `exited with code ${code}`;
    if (shuttingDown) {
      s.exited = { code, signal, err };
      say(`${s.svc.name} ${how}`);
      checkDone();
      return;
    }
    unexpectedExit = true;
    if (code === EXIT_CONFIG) {
      // A configuration error (a bad variable, a port in use) fails the same way on every restart.
      configError = true;
      say(`${s.svc.name} ${how} (configuration error); not restarting: fix the configuration and start again`, 'error');
      if (running().length === 0 && ![...state.values()].some((x) => x.timer !== null)) {
        say('no service left running; exiting', 'error');
        shuttingDown = true;
        checkDone();
      }
      return;
    }
    if (!opts.restart) {
      say(`${s.svc.name} ${how}; not restarting (--no-restart)`);
      if (running().length === 0) {
        say('no service left running; exiting');
        shuttingDown = true;
        checkDone();
      }
      return;
    }
    // Restart with backoff: 1 s, 2 s, 4 s ... capped at 30 s; reset after a run of 60 s or more.
    const upFor = s.startedAt ? Date.now() - s.startedAt : 0;
    if (upFor >= BACKOFF_RESET_AFTER_MS) s.delay = BACKOFF_INITIAL_MS;
    const delay = s.delay;
    s.delay = Math.min(s.delay * 2, BACKOFF_MAX_MS);
    say(`${s.svc.name} ${how} unexpectedly; restarting in ${delay / 1000}s`);
    s.timer = setTimeout(() => launch(s), delay);
  }

  let forceKill = null;
  function shutdown(sig) {
    if (shuttingDown) {
      if (forceKill) {
        say(`${sig} again: killing now`, 'warn');
        forceKill();
      }
      return;
    }
    shuttingDown = true;
    say(`${sig === 'parent process exited' ? sig : `${sig} received`}: stopping ${running().map((s) => s.svc.name).join(', ') || 'nothing'}`);
    for (const s of state.values()) {
      if (s.timer) {
        clearTimeout(s.timer);
        s.timer = null;
      }
      if (s.child) {
        try {
          s.child.kill('SIGTERM');
        } catch {
          // already gone
        }
      }
    }
    const graceTimer = setTimeout(() => forceKill && forceKill(), SHUTDOWN_GRACE_MS);
    forceKill = () => {
      forceKill = null;
      clearTimeout(graceTimer);
      for (const s of running()) {
        say(`${s.svc.name} did not stop in time; SIGKILL`, 'warn');
        s.forceKilled = true;
        try {
          s.child.kill('SIGKILL');
        } catch {
          // already gone
        }
      }
    };
    allExited.then(() => clearTimeout(graceTimer));
    checkDone();
  }

  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGHUP', () => shutdown('SIGHUP'));
  // Whatever ends the supervisor, no child outlives it: a last SIGTERM (the children also watch their parent).
  process.on('exit', () => {
    for (const s of running()) {
      try {
        s.child.kill('SIGTERM');
      } catch {
        // already gone
      }
    }
  });
  // `npm start` runs us through `sh -c`: when the shell dies (of the SIGTERM or SIGINT npm passes on to it, not
  // to us) we are re-parented; when npm dies of a signal it passes on to nobody (SIGHUP, SIGKILL), the shell
  // stays. Either way: stop as if signalled. (Nothing to watch under PID 1, e.g. a container's CMD.)
  const stopWatching = watchParent(() => shutdown('parent process exited'));
  allExited.then(stopWatching);

  for (const svc of services) {
    const port = ports.get(svc.name);
    const childEnv = port === undefined ? env : { ...env, METRICS_PORT: String(port) };
    const s = { svc, env: childEnv, child: null, startedAt: 0, delay: BACKOFF_INITIAL_MS, timer: null, exited: null, forceKilled: false };
    state.set(svc.name, s);
    launch(s);
  }

  await allExited;

  if (configError) return EXIT_CONFIG;
  if (unexpectedExit && !opts.restart) return 1;
  const clean = [...state.values()].every((s) => {
    if (s.forceKilled) return false;
    if (!s.exited) return true; // was waiting to restart, never running at shutdown
    const { code, signal, err } = s.exited;
    return !err && (code === 0 || signal === 'SIGTERM' || signal === 'SIGINT');
  });
  say(clean ? 'all services stopped' : 'stopped, but not every service shut down cleanly', clean ? 'info' : 'warn');
  return clean ? 0 : 1;
}

/** A process's parent pid, start time and state from /proc (Linux), or undefined. */
function procStat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0], ppid: Number(fields[1]), startTime: fields[19] };
  } catch {
    return undefined;
  }
}

/**
 * Calls onGone once our parent has exited (we were re-parented), or, when the parent is a shell running a command
 * string (`sh -c`, as npm runs scripts), once the shell's parent has. The services do the same
 * (libs/runtime, watchParent). Returns a function that stops watching.
 */
export function watchParent(onGone, { intervalMs = PARENT_CHECK_MS, readPpid = () => process.ppid } = {}) {
  const parent = readPpid();
  if (parent <= 1) return () => {};
  let grand;
  try {
    const argv = readFileSync(`/proc/${parent}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const gp = procStat(parent)?.ppid;
    if (argv[1] === '-c' && /(^|\/)(sh|dash|bash|ash|zsh)$/.test(argv[0] ?? '') && gp > 1) {
      const st = procStat(gp);
      if (st) grand = { pid: gp, startTime: st.startTime };
    }
  } catch {
    // no /proc: only the parent pid is watched
  }
  const timer = setInterval(() => {
    let gone = readPpid() !== parent;
    if (!gone && grand) {
      const st = procStat(grand.pid);
      gone = !st || st.startTime !== grand.startTime || st.state === 'Z';
    }
    if (!gone) return;
    clearInterval(timer);
    onGone();
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

// Run only when executed directly, so the helpers above can be imported by tests.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      say(`fatal: ${err && err.stack ? err.stack : err}`, 'fatal');
      process.exitCode = 1;
    },
  );
}

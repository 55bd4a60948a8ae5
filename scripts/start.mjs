#!/usr/bin/env node
// Process supervisor for local runs and for the container image (`npm start`, the Dockerfile's CMD).
//
// Every `start:<name>` script in the root package.json is one service. Each one runs as its own child process,
// spawned from the script's argv directly (not through `npm run`, so signals reach the node process itself).
// Output lines are prefixed with `[name] `; the rest of the line is passed through untouched, so pino's JSON
// lines stay parseable after the prefix.
//
// Shutdown: SIGINT or SIGTERM sends SIGTERM to every child, waits up to 15 s, then SIGKILLs whatever is left
// and exits (0 when every child stopped in time and cleanly). A second SIGINT/SIGTERM skips the wait.
//
// Restart policy: a child that exits while we are not shutting down is logged and restarted with exponential
// backoff, 1 s doubling up to 30 s; the delay resets once a child has stayed up for 60 s. `--no-restart`
// disables restarts: the other services keep running, and the supervisor exits 1 once none is left.
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
    'Starts every service named by a `start:<name>` script in package.json as its own child process,',
    'prefixing each output line with [name].',
    '',
    '  --only a,b     start only these services',
    '  --no-restart   do not restart a service that exits (default: restart with backoff 1s..30s);',
    '                 the supervisor exits 1 when no service is left',
    '  --root DIR     read DIR/package.json and run the services in DIR (default: the repository root)',
    '  --help         this text',
    '',
    'SIGINT/SIGTERM: SIGTERM to every service, up to 15 s grace, then SIGKILL. Exit 0 on a clean shutdown.',
    '',
    `Services: ${services.map((s) => s.name).join(', ') || '(none found)'}`,
    '',
  ].join('\n');
}

function say(msg) {
  safeWrite(process.stderr, `[start] ${msg}\n`);
}

function safeWrite(stream, text) {
  try {
    stream.write(text);
  } catch {
    // stdout/stderr closed (EPIPE): nothing useful to do.
  }
}

function pipeLines(stream, out, prefix) {
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  rl.on('line', (line) => safeWrite(out, `${prefix}${line}\n`));
}

async function main() {
  // A closed stdout (e.g. `npm start | head`) must not crash the supervisor and orphan the children.
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});

  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    say(err.message);
    return 2;
  }
  const ROOT = opts.root;
  let services;
  try {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    services = readServices(pkg);
  } catch (err) {
    say(`cannot read services from ${path.join(ROOT, 'package.json')}: ${err.message}`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(usage(services));
    return 0;
  }
  if (opts.only) {
    const known = new Set(services.map((s) => s.name));
    const unknown = opts.only.filter((n) => !known.has(n));
    if (unknown.length) {
      say(`unknown service(s) in --only: ${unknown.join(', ')} (known: ${[...known].join(', ')})`);
      return 2;
    }
    const wanted = new Set(opts.only);
    services = services.filter((s) => wanted.has(s.name));
  }
  if (services.length === 0) {
    say('no start:<name> scripts found in package.json; nothing to run');
    return 2;
  }

  // Like `npm run`: local binaries on PATH; otherwise the parent's environment unchanged.
  const env = {
    ...process.env,
    PATH: [path.join(ROOT, 'node_modules', '.bin'), process.env.PATH].filter(Boolean).join(path.delimiter),
  };

  let shuttingDown = false;
  let unexpectedExit = false;
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
      child = spawn(file, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      onExit(s, null, null, err);
      return;
    }
    s.child = child;
    s.startedAt = Date.now();
    const prefix = `[${s.svc.name}] `;
    pipeLines(child.stdout, process.stdout, prefix);
    pipeLines(child.stderr, process.stderr, prefix);
    say(`${s.svc.name} started (pid ${child.pid ?? '?'}): ${s.svc.command}`);
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
        say(`${sig} again: killing now`);
        forceKill();
      }
      return;
    }
    shuttingDown = true;
    say(`${sig} received: stopping ${running().map((s) => s.svc.name).join(', ') || 'nothing'}`);
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
        say(`${s.svc.name} did not stop in time; SIGKILL`);
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

  for (const svc of services) {
    const s = { svc, child: null, startedAt: 0, delay: BACKOFF_INITIAL_MS, timer: null, exited: null, forceKilled: false };
    state.set(svc.name, s);
    launch(s);
  }

  await allExited;

  if (unexpectedExit && !opts.restart) return 1;
  const clean = [...state.values()].every((s) => {
    if (s.forceKilled) return false;
    if (!s.exited) return true; // was waiting to restart, never running at shutdown
    const { code, signal, err } = s.exited;
    return !err && (code === 0 || signal === 'SIGTERM' || signal === 'SIGINT');
  });
  say(clean ? 'all services stopped' : 'stopped, but not every service shut down cleanly');
  return clean ? 0 : 1;
}

// Run only when executed directly, so the helpers above can be imported by tests.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      say(`fatal: ${err && err.stack ? err.stack : err}`);
      process.exitCode = 1;
    },
  );
}

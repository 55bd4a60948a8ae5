#!/usr/bin/env node
/**
 * Container healthchecks (docker-compose.yml), with no dependency but node:
 *
 *   node scripts/healthcheck.mjs --http URL
 *       healthy when URL answers 2xx within 4 s (the API: /health/ready on API_PORT; the saga and the workers:
 *       /health/ready on METRICS_PORT; both ask RabbitMQ and Redis).
 *   node scripts/healthcheck.mjs --connected
 *       for processes without an HTTP port (the saga, the lookup workers, the resource worker): healthy when this
 *       network namespace holds an ESTABLISHED TCP connection to AMQP_URL's port (one of them, for a list) and one to REDIS_URL's port
 *       (read from /proc/net/tcp and /proc/net/tcp6). In a container the service is the only process with sockets,
 *       so this says "the service is running and connected to the broker and to Redis"; while it reconnects (a
 *       broker restart) it is unhealthy, and a process whose event loop is stuck loses its AMQP connection to the
 *       broker's 15 s heartbeat. (docker-compose.yml now checks the saga and the workers over HTTP, on their metrics
       listener's /health/ready at METRICS_PORT; this mode stays for images or setups without that port.)
 *
 * Exit code 0 healthy, 1 unhealthy (one line on stderr says why), 2 usage error.
 */
import { readFileSync } from 'node:fs';

const TCP_ESTABLISHED = '01';
const DEFAULT_PORTS = { 'amqp:': 5672, 'amqps:': 5671, 'redis:': 6379, 'rediss:': 6379 };

function fail(message, code = 1) {
  process.stderr.write(`unhealthy: ${message}\n`);
  process.exit(code);
}

/** The ports a service URL connects to (its explicit port, else the scheme's default); AMQP_URL may list several nodes. */
function urlPorts(raw, fallbackUrl) {
  return (raw || fallbackUrl).split(',').map((item) => {
    const url = new URL(item.trim());
    return url.port ? Number(url.port) : DEFAULT_PORTS[url.protocol];
  });
}

/** Remote ports of the ESTABLISHED connections listed in /proc/net/tcp-format text. */
function establishedRemotePorts(text) {
  const ports = new Set();
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    // sl local_address rem_address st ...; addresses are HEXADDR:HEXPORT
    if (fields.length < 4 || fields[3] !== TCP_ESTABLISHED) continue;
    const port = Number.parseInt(fields[2].split(':').at(-1), 16);
    if (Number.isInteger(port)) ports.add(port);
  }
  return ports;
}

function readProcNet(procNet) {
  let text = '';
  for (const name of ['tcp', 'tcp6']) {
    try {
      text += `${readFileSync(`${procNet}/${name}`, 'utf8')}\n`;
    } catch {
      // no IPv6 in this namespace
    }
  }
  return text;
}

async function checkHttp(url) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(4000) });
    if (res.ok) process.exit(0);
    fail(`${url} answered ${res.status}`);
  } catch (err) {
    fail(`${url}: ${err.cause?.code ?? err.message}`);
  }
}

function checkConnected() {
  const procNet = process.env.HEALTHCHECK_PROC_NET ?? '/proc/net';
  const wanted = {
    RabbitMQ: urlPorts(process.env.AMQP_URL, 'amqp://127.0.0.1:5672'),
    Redis: urlPorts(process.env.REDIS_URL, 'redis://127.0.0.1:6379'),
  };
  const established = establishedRemotePorts(readProcNet(procNet));
  // Connected to any node of the list.
  const missing = Object.entries(wanted).filter(([, ports]) => !ports.some((port) => established.has(port)));
  if (missing.length > 0) fail(`no established connection to ${missing.map(([name, ports]) => `${name} (port ${ports.join(' or ')})`).join(' or ')}`);
  process.exit(0);
}

const [mode, arg] = process.argv.slice(2);
if (mode === '--http' && arg) await checkHttp(arg);
else if (mode === '--connected' && arg === undefined) checkConnected();
else fail('usage: healthcheck.mjs --http URL | --connected', 2);

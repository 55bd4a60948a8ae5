// One log line per HTTP request (issue 12): URL, status, duration and the job id, instead of Fastify's two lines.
import { afterEach, describe, expect, it } from 'vitest';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { createLogger } from '@lookup/logging';
import { RequestLogController } from './request-log.ts';

const JOB = '3f1c2a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b';
const apps: FastifyInstance[] = [];
afterEach(async () => {
  while (apps.length > 0) await apps.pop()!.close();
});

async function appWithLog(level = 'info') {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const logger = createLogger({
    service: 'api',
    level,
    destination: { write: (line: string) => void (raw.push(line), lines.push(JSON.parse(line) as Record<string, unknown>)) },
  });
  const app = Fastify({ loggerInstance: logger as FastifyBaseLogger, logController: new RequestLogController() });
  app.post('/api/lookup', async (_req, reply) => reply.code(202).header('X-Job-Id', JOB).send({ jobId: JOB }));
  app.get<{ Params: { jobId: string } }>('/api/lookup/:jobId', async (req, reply) => reply.code(404).send({ error: 'Job not found', message: req.params.jobId }));
  app.get('/health/live', async () => ({ status: 'ok' }));
  app.get('/boom', async () => {
    throw new Error('kaput');
  });
  apps.push(app);
  await app.ready();
  return { app, lines, raw };
}

describe('request log', () => {
  it('writes exactly one line per request, with method, URL, status, duration and the job id from X-Job-Id', async () => {
    const { app, lines } = await appWithLog();
    const res = await app.inject({ method: 'POST', url: '/api/lookup?x=1', payload: {} });
    expect(res.statusCode).toBe(202);
    const requestLines = lines.filter((l) => l.reqId !== undefined);
    expect(requestLines).toHaveLength(1);
    expect(requestLines[0]).toMatchObject({ level: 'info', msg: 'request', service: 'api', method: 'POST', url: '/api/lookup?x=1', statusCode: 202, jobId: JOB });
    expect(typeof requestLines[0]!.durationMs).toBe('number');
    expect(lines.some((l) => l.msg === 'incoming request' || l.msg === 'request completed')).toBe(false);
  });

  it('takes the job id from the route parameter when no header names it', async () => {
    const { app, lines } = await appWithLog();
    await app.inject({ method: 'GET', url: `/api/lookup/${JOB}` });
    expect(lines.filter((l) => l.reqId !== undefined)).toEqual([expect.objectContaining({ statusCode: 404, jobId: JOB, url: `/api/lookup/${JOB}` })]);
  });

  it('logs health probes at debug only, so a probe every few seconds does not fill the log', async () => {
    const info = await appWithLog('info');
    await info.app.inject({ method: 'GET', url: '/health/live' });
    expect(info.lines.filter((l) => l.reqId !== undefined)).toHaveLength(0);
    const debug = await appWithLog('debug');
    await debug.app.inject({ method: 'GET', url: '/health/live' });
    expect(debug.lines.filter((l) => l.msg === 'request')).toEqual([expect.objectContaining({ level: 'debug', url: '/health/live', statusCode: 200 })]);
  });

  it('still logs a 500 once as a request line (the error itself is the error handler\'s line)', async () => {
    const { app, lines, raw } = await appWithLog();
    await app.inject({ method: 'GET', url: '/boom' });
    expect(lines.filter((l) => l.msg === 'request')).toEqual([expect.objectContaining({ statusCode: 500, url: '/boom' })]);
    for (const line of raw) expect(line.match(/"service":/g)).toHaveLength(1);
  });
});

import type { FastifyInstance } from 'fastify';
import type { JobDocument } from '@lookup/contracts';
import type { ApiDeps } from '../deps.ts';
import type { JobEventSource } from '../job-events.ts';
import { parseJobId } from '../errors.ts';
import { JobNotFound, StoreUnavailable } from '../http-errors.ts';
import { API_ERROR_RESPONSES, JOB_ROUTE_ERRORS, JobIdParamsSchema, errorResponse } from '../schemas.ts';

const HEARTBEAT_MS = 15_000;
const MAX_STREAM_MS = 10 * 60_000;
const isFinal = (doc: JobDocument) => doc.status === 'Completed' || doc.status === 'Cancelled';

/**
 * GET /api/lookup/{jobId}/events: a server-sent event stream that tells the client the moment its job
 * finishes, instead of polling. It sends `status` with the job document at once, then `completed` with
 * the final document when the job is Completed or Cancelled, and closes.
 */
export function registerJobStreamRoute(app: FastifyInstance, deps: Pick<ApiDeps, 'jobs'> & { events: JobEventSource }): void {
  const { jobs, events } = deps;
  // Open streams would hold a shutdown for up to MAX_STREAM_MS: end them first (clients reconnect elsewhere).
  const open = new Set<() => void>();
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
    for (const end of [...open]) end();
  });
  app.get<{ Params: { jobId: string } }>(
    '/api/lookup/:jobId/events',
    {
      attachValidation: true,
      schema: {
        tags: ['lookup'],
        summary: 'Stream a job until it finishes (server-sent events)',
        description:
          'A `text/event-stream`: `event: status` with the job document at once, then `event: completed` with the ' +
          'final document when the job is Completed or Cancelled, after which the stream ends. Comment lines keep ' +
          'the connection alive every 15 s. The cheap alternative to polling GET /api/lookup/{jobId}.',
        params: JobIdParamsSchema,
        produces: ['text/event-stream'],
        response: {
          200: { description: 'The event stream', type: 'string' },
          ...JOB_ROUTE_ERRORS,
        },
      },
    },
    async (request, reply) => {
      const jobId = parseJobId(request);
      // Subscribe before the first read, so an event between the read and the subscription is not missed.
      let wake: () => void = () => undefined;
      let woken = false;
      const unsubscribe = events.subscribe(jobId, () => {
        woken = true;
        wake();
      });
      let doc: JobDocument | undefined;
      try {
        doc = await jobs.getDocument(jobId);
      } catch (err) {
        unsubscribe();
        request.log.error({ err, jobId }, 'could not read the job; answering 503');
        throw new StoreUnavailable();
      }
      if (!doc) {
        unsubscribe();
        throw new JobNotFound(jobId);
      }

      reply.hijack();
      const res = reply.raw;
      // Headers already set on the reply (rate-limit counters) go out with the stream.
      for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) res.setHeader(name, value as string | number | string[]);
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        // No explicit `Connection: keep-alive`: HTTP/1.1 keeps the connection by default, and a client that sent
        // `Connection: close` gets it closed after the stream (forcing keep-alive held it open until the
        // keep-alive timeout).
        'x-accel-buffering': 'no',
        'x-job-id': jobId,
      });
      const frame = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
      // The final event and the end of the stream leave in one write (one TCP segment for the client to read).
      const send = (d: JobDocument) => (isFinal(d) ? res.end(frame('completed', d)) : res.write(frame('status', d)));
      let closed = false;
      const end = () => {
        closed = true;
        wake();
      };
      request.raw.on('close', end);
      open.add(end);
      const started = Date.now();
      try {
        send(doc);
        while (!isFinal(doc) && !closed && !closing && Date.now() - started < MAX_STREAM_MS) {
          if (!woken) {
            await new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, HEARTBEAT_MS);
              wake = () => {
                clearTimeout(timer);
                resolve();
              };
            });
          }
          if (closed) break;
          if (!woken) {
            res.write(': keep-alive\n\n');
            continue;
          }
          woken = false;
          try {
            doc = (await jobs.getDocument(jobId)) ?? doc;
          } catch (err) {
            request.log.warn({ err, jobId }, 'could not re-read the job for its stream; waiting for the next event');
            continue;
          }
          if (isFinal(doc)) send(doc);
        }
      } finally {
        unsubscribe();
        open.delete(end);
        if (!res.writableEnded) res.end();
      }
    },
  );
}

import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';

/**
 * One log line per HTTP request, written when the answer has been sent, instead of Fastify's two ("incoming
 * request" and "request completed"): method, URL, status, duration and, when the request concerns a job, its id,
 * so `grep <jobId>` finds the HTTP side too. Health probes (which orchestrators send every few seconds) are logged
 * at debug level, everything else at info; a request whose response failed (the connection broke) at error.
 */
export class RequestLogController extends LogController {
  override incomingRequest(): void {
    // Nothing: the request is logged once, when it completes.
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    const fields = requestLogFields(request, reply);
    if (error) reply.log.error({ ...fields, err: error }, 'request failed');
    else if (request.url.startsWith('/health/')) reply.log.debug(fields, 'request');
    else reply.log.info(fields, 'request');
  }
}

/** The fields of a request's log line (the request id, `reqId`, is already bound to request.log). */
export function requestLogFields(request: FastifyRequest, reply: FastifyReply): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    method: request.method,
    url: request.url,
    statusCode: reply.statusCode,
    durationMs: Math.round(reply.elapsedTime * 10) / 10,
  };
  const jobId = jobIdOf(request, reply);
  if (jobId) fields.jobId = jobId;
  return fields;
}

function jobIdOf(request: FastifyRequest, reply: FastifyReply): string | undefined {
  const header = reply.getHeader('x-job-id') ?? reply.raw.getHeader('x-job-id');
  if (typeof header === 'string' && header !== '') return header;
  const params = request.params as Record<string, unknown> | undefined;
  const param = params && typeof params === 'object' ? params.jobId : undefined;
  return typeof param === 'string' && param !== '' ? param.slice(0, 64) : undefined;
}

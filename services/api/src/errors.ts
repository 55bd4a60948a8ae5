import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { UUID_RE, type ErrorBody } from '@lookup/contracts';

/** Every error answer of the API: `{error, message, code?, details?, retryAfter?}` (invariant 7). */
export function sendError(
  reply: FastifyReply,
  statusCode: number,
  body: ErrorBody,
  headers: Record<string, string | number> = {},
): FastifyReply {
  for (const [name, value] of Object.entries(headers)) reply.header(name, value);
  return reply.code(statusCode).type('application/json; charset=utf-8').send(body);
}

/**
 * An error thrown from a hook that already knows its JSON answer (the rate-limit plugin's 429): the error handler
 * sends `body` with `statusCode` as it is.
 */
export class HttpError extends Error {
  readonly statusCode: number;
  readonly body: ErrorBody;
  constructor(statusCode: number, body: ErrorBody) {
    super(body.message);
    this.name = 'HttpError';
    this.statusCode = statusCode;
    this.body = body;
  }
}

/** 503 for a dependency that is down: the client should retry shortly. */
export function sendUnavailable(reply: FastifyReply, message: string, retryAfterSeconds = 5): FastifyReply {
  return sendError(reply, 503, { error: 'Service unavailable', message, retryAfter: retryAfterSeconds }, { 'Retry-After': retryAfterSeconds });
}

interface AjvError {
  keyword: string;
  instancePath: string;
  schemaPath: string;
  message?: string;
  params?: Record<string, unknown>;
}

/**
 * One line per problem, e.g. `body/target must be string`. The branch errors of an `anyOf` are folded
 * into one line (`body/services/0 must be string or must be <= 3`) instead of three.
 */
export function describeValidation(err: FastifyError): string[] {
  const context = err.validationContext ?? 'request';
  const errors = (err.validation ?? []) as unknown as AjvError[];
  const anyOfs = errors.filter((e) => e.keyword === 'anyOf');
  const lines: string[] = [];
  const consumed = new Set<AjvError>();
  for (const a of anyOfs) {
    const prefix = `${a.schemaPath}/`;
    const branches = errors.filter((e) => e !== a && e.instancePath === a.instancePath && e.schemaPath.startsWith(prefix));
    branches.forEach((b) => consumed.add(b));
    const messages = [...new Set(branches.map((b) => b.message ?? b.keyword))];
    lines.push(`${context}${a.instancePath} ${messages.length > 0 ? messages.join(' or ') : (a.message ?? 'is invalid')}`);
    consumed.add(a);
  }
  for (const e of errors) {
    if (consumed.has(e)) continue;
    let line = `${context}${e.instancePath} ${e.message ?? `fails ${e.keyword}`}`;
    if (e.keyword === 'additionalProperties' && typeof e.params?.additionalProperty === 'string') {
      line += ` ('${e.params.additionalProperty}')`;
    }
    lines.push(line);
  }
  return [...new Set(lines)];
}

const VALIDATION_TITLES: Record<string, string> = {
  body: 'Invalid request body',
  params: 'Invalid path parameter',
  querystring: 'Invalid query string',
  headers: 'Invalid request headers',
};

/** Maps any error to its JSON answer. Client errors keep their 4xx; anything else is a 500 without details. */
export function handleError(err: FastifyError, request: FastifyRequest, reply: FastifyReply, bodyLimitBytes: number): FastifyReply {
  if (err instanceof HttpError) return sendError(reply, err.statusCode, err.body);
  if (err.validation) {
    const details = describeValidation(err);
    return sendError(reply, 400, {
      error: VALIDATION_TITLES[err.validationContext ?? ''] ?? 'Invalid request',
      message: details[0] ?? err.message,
      details,
    });
  }
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': {
      const type = String(request.headers['content-type'] ?? '').trim();
      return sendError(reply, 415, {
        error: 'Unsupported media type',
        message: type
          ? `Content-Type '${truncate(type, 100)}' is not supported; send application/json`
          : 'The request has a body but no Content-Type; send application/json',
      });
    }
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return sendError(reply, 413, {
        error: 'Payload too large',
        message: `The request body is larger than ${bodyLimitBytes} bytes`,
      });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return sendError(reply, 400, { error: 'Invalid JSON', message: 'The request body is empty; send a JSON object' });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return sendError(reply, 400, { error: 'Invalid JSON', message: 'The request body is not valid JSON' });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return sendError(reply, 400, { error: 'Bad request', message: 'Content-Length does not match the length of the body' });
    default:
      break;
  }
  const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
  if (status >= 400 && status < 500) {
    request.log.info({ code: err.code, statusCode: status }, err.message);
    return sendError(reply, status, { error: STATUS_CODES[status] ?? 'Bad request', message: err.message });
  }
  request.log.error({ err }, 'unexpected error while handling the request');
  return sendError(reply, 500, { error: 'Internal error', message: 'The request failed unexpectedly; it was logged' });
}

const PROBED_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/**
 * One error handler and one not-found handler for the whole app: every error is JSON. A path that exists
 * under another method answers 405 with an Allow header; an unknown path 404.
 */
export function installErrorHandling(app: FastifyInstance, bodyLimitBytes: number): void {
  app.setErrorHandler((err: FastifyError, request, reply) => handleError(err, request, reply, bodyLimitBytes));
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '/';
    // Each method's matching route, and how many parameters it needed. The most specific match names the
    // resource: PATCH /api/lookup/services must not offer DELETE because DELETE /api/lookup/{jobId} would match
    // 'services' as a job id; only the methods of the routes with the fewest parameters are allowed.
    const matches = PROBED_METHODS.flatMap((m) => {
      if (m === request.method) return [];
      const route = app.findRoute({ method: m, url: path });
      // CORS's catch-all preflight route (OPTIONS *) does not make every path exist.
      if (route === null || (m === 'OPTIONS' && route.params && '*' in route.params)) return [];
      return [{ method: m, params: Object.keys(route.params ?? {}).length }];
    });
    const fewest = Math.min(...matches.map((r) => r.params));
    const allowed = matches.filter((r) => r.params === fewest).map((r) => r.method);
    if (allowed.length > 0) {
      return sendError(
        reply,
        405,
        { error: 'Method not allowed', message: `${request.method} is not allowed on ${truncate(path, 200)}; use ${allowed.join(', ')}` },
        { Allow: allowed.join(', ') },
      );
    }
    return sendError(reply, 404, { error: 'Not found', message: `No route for ${request.method} ${truncate(path, 200)}` });
  });
}

/** The answer to a URL longer than API_MAX_URL_LENGTH (an onRequest hook, and before routing errors). */
export function sendUrlTooLong(reply: FastifyReply, length: number, max: number): FastifyReply {
  return sendError(reply, 414, { error: 'URI too long', message: `The request URL is ${length} characters long; at most ${max} are accepted` });
}

/** Errors Fastify raises before routing (malformed URL, over-long path parameter); an over-long URL is 414 first. */
export function frameworkErrorHandler(maxUrlLength: number) {
  return (err: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    const url = request.raw.url ?? '';
    if (url.length > maxUrlLength) {
      sendUrlTooLong(reply, url.length, maxUrlLength);
      return;
    }
    if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
      sendError(reply, 414, { error: 'URI too long', message: 'A path parameter is too long' });
      return;
    }
    if (err.code === 'FST_ERR_BAD_URL') {
      sendError(reply, 400, { error: 'Bad request', message: 'The URL is malformed' });
      return;
    }
    sendError(reply, 500, { error: 'Internal error', message: 'The request failed unexpectedly; it was logged' });
  };
}

/**
 * Errors node's HTTP parser raises before Fastify sees a request: it answers on the raw socket, JSON
 * `{error, message}`, and closes the connection. 431 for headers (request line included) over maxHeaderSize,
 * 408 for a request not received within the request or header timeout, 400 for anything malformed.
 */
export function clientErrorHandler(limits: { apiMaxHeaderBytes: number; apiRequestTimeoutMs: number }) {
  return function onClientError(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Duplex): void {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    let status: number;
    let body: ErrorBody;
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      status = 408;
      body = { error: 'Request timeout', message: `The request was not received within ${limits.apiRequestTimeoutMs} ms` };
    } else if (err.code === 'HPE_HEADER_OVERFLOW') {
      status = 431;
      body = { error: 'Request header fields too large', message: `The request line and headers exceed ${limits.apiMaxHeaderBytes} bytes` };
    } else {
      status = 400;
      body = { error: 'Bad request', message: 'The request is not valid HTTP/1.1' };
    }
    this.log.debug({ code: err.code, statusCode: status }, 'client error before routing');
    // As node does: never write into a response that has already started (a timeout during a slow upload whose
    // early answer went out); just close.
    const inProgress = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (socket.writable && !inProgress?.headersSent) {
      const json = JSON.stringify(body);
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
          `Content-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`,
      );
    }
    socket.destroy();
  };
}

export function truncate(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}...` : s;
}

/**
 * The job id of a /api/lookup/{jobId}... route, lower-cased; or undefined after answering 400 for a malformed
 * one (the routes attach validation errors instead of failing, so every malformed id gets the same answer).
 */
export function jobIdOr400(request: { params: { jobId: string }; validationError?: unknown }, reply: FastifyReply): string | undefined {
  const raw = request.params.jobId;
  if (request.validationError || !UUID_RE.test(raw)) {
    sendError(reply, 400, { error: 'Invalid job id', message: `'${truncate(raw, 100)}' is not a UUID` });
    return undefined;
  }
  return raw.toLowerCase();
}

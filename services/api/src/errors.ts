import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { UUID_RE } from '@lookup/contracts';
import {
  ContentLengthMismatch,
  HeadersTooLarge,
  HttpError,
  InternalError,
  InvalidJobId,
  InvalidJson,
  MalformedHttp,
  MalformedUrl,
  MethodNotAllowed,
  NotFound,
  PathParameterTooLong,
  PayloadTooLarge,
  RequestTimeout,
  UnsupportedMediaType,
  UrlTooLong,
  ValidationFailed,
  clientError,
} from './http-errors.ts';

/**
 * The error handler: maps whatever was thrown to the one error answer `{error, message, code, details?, retryAfter?}`
 * (invariant 7) with its headers. The errors themselves, their statuses, codes, titles and messages, are the
 * catalogue in http-errors.ts.
 */

/** Sends a catalogue error: its status, its headers and its body. */
export function sendHttpError(reply: FastifyReply, err: HttpError): FastifyReply {
  for (const [name, value] of Object.entries(err.headers)) reply.header(name, value);
  return reply.code(err.statusCode).type('application/json; charset=utf-8').send(err.toBody());
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

/**
 * The catalogue error for anything thrown while handling a request. Client errors keep their 4xx; anything else is
 * a 500 without details (and logged).
 */
export function toHttpError(err: FastifyError, request: FastifyRequest, bodyLimitBytes: number): HttpError {
  if (err instanceof HttpError) return err;
  if (err.validation) {
    const details = describeValidation(err);
    return new ValidationFailed(err.validationContext, details, err.message);
  }
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new UnsupportedMediaType(String(request.headers['content-type'] ?? '').trim());
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PayloadTooLarge(request.routeOptions?.bodyLimit ?? bodyLimitBytes); // a route may allow more (the batch)
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new InvalidJson('empty');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new InvalidJson('malformed');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ContentLengthMismatch();
    default:
      break;
  }
  const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
  if (status >= 400 && status < 500) {
    request.log.info({ code: err.code, statusCode: status }, err.message);
    return clientError(status, err.message);
  }
  request.log.error({ err }, 'unexpected error while handling the request');
  return new InternalError();
}

/** The error handler of the app (and of the scopes that have their own): sends toHttpError's answer. */
export function handleError(err: FastifyError, request: FastifyRequest, reply: FastifyReply, bodyLimitBytes: number): FastifyReply {
  return sendHttpError(reply, toHttpError(err, request, bodyLimitBytes));
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
    if (allowed.length > 0) return sendHttpError(reply, new MethodNotAllowed(request.method, path, allowed));
    return sendHttpError(reply, new NotFound(request.method, path));
  });
}

/** Errors Fastify raises before routing (malformed URL, over-long path parameter); an over-long URL is 414 first. */
export function frameworkErrorHandler(maxUrlLength: number) {
  return (err: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    const url = request.raw.url ?? '';
    if (url.length > maxUrlLength) sendHttpError(reply, new UrlTooLong(url.length, maxUrlLength));
    else if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') sendHttpError(reply, new PathParameterTooLong());
    else if (err.code === 'FST_ERR_BAD_URL') sendHttpError(reply, new MalformedUrl());
    else sendHttpError(reply, new InternalError());
  };
}

/**
 * Errors node's HTTP parser raises before Fastify sees a request: it answers on the raw socket, JSON
 * `{error, message, code}`, and closes the connection. 431 for headers (request line included) over maxHeaderSize,
 * 408 for a request not received within the request or header timeout, 400 for anything malformed.
 */
export function clientErrorHandler(limits: { apiMaxHeaderBytes: number; apiRequestTimeoutMs: number }) {
  return function onClientError(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Duplex): void {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const error =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new RequestTimeout(limits.apiRequestTimeoutMs)
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? new HeadersTooLarge(limits.apiMaxHeaderBytes)
          : new MalformedHttp();
    const status = error.statusCode;
    this.log.debug({ code: err.code, statusCode: status }, 'client error before routing');
    // As node does: never write into a response that has already started (a timeout during a slow upload whose
    // early answer went out); just close.
    const inProgress = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (socket.writable && !inProgress?.headersSent) {
      const json = JSON.stringify(error.toBody());
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
          `Content-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`,
      );
    }
    socket.destroy();
  };
}

/**
 * The job id of a /api/lookup/{jobId}... route, lower-cased; throws InvalidJobId (400) for a malformed one (the
 * routes attach validation errors instead of failing, so every malformed id gets the same answer).
 */
export function parseJobId(request: { params: { jobId: string }; validationError?: unknown }): string {
  const raw = request.params.jobId;
  if (request.validationError || !UUID_RE.test(raw)) throw new InvalidJobId(raw);
  return raw.toLowerCase();
}

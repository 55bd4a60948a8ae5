import { STATUS_CODES } from 'node:http';
import type { ErrorBody } from '@lookup/contracts';

/**
 * The catalogue of every error the API answers, in the spirit of fastify's lib/errors.js and @fastify/error: one
 * class per error with its status, its stable `code` (UPPER_SNAKE; clients match on it, not on the text), its title
 * (the body's `error`) and its message template. Routes and hooks `throw new JobNotFound(jobId)`; the error handler
 * (errors.ts) turns any HttpError into the one error body `{error, message, code, details?, retryAfter?}` with its
 * headers (Retry-After whenever `retryAfter` is set). Nothing here knows Fastify.
 * Not here: a resource worker's own answers (its 403 STATEMENT_NOT_ALLOWED, SQL_ERROR...), relayed as the worker sent
 * them, and /health/ready's 503, a readiness document rather than an error.
 */
export class HttpError extends Error {
  readonly statusCode: number;
  readonly code: string;
  /** The body's `error`: a short title. */
  readonly title: string;
  readonly details: ErrorBody['details'] | undefined;
  /** Seconds; sent as `retryAfter` and as the Retry-After header. */
  readonly retryAfter: number | undefined;
  /** Headers the answer carries besides Retry-After (Allow, WWW-Authenticate, X-Resource-Owner...). */
  readonly headers: Readonly<Record<string, string | number>>;

  constructor(init: {
    statusCode: number;
    code: string;
    title: string;
    message: string;
    details?: ErrorBody['details'];
    retryAfter?: number;
    headers?: Record<string, string | number>;
  }) {
    super(init.message);
    this.name = 'HttpError';
    this.statusCode = init.statusCode;
    this.code = init.code;
    this.title = init.title;
    this.details = init.details;
    this.retryAfter = init.retryAfter;
    const headers = { ...init.headers };
    if (init.retryAfter !== undefined) headers['Retry-After'] = init.retryAfter;
    this.headers = headers;
  }

  /** The one error body, keys in this order: error, message, code, details?, retryAfter?. */
  toBody(): ErrorBody {
    const body: ErrorBody = { error: this.title, message: this.message, code: this.code };
    if (this.details !== undefined) body.details = this.details;
    if (this.retryAfter !== undefined) body.retryAfter = this.retryAfter;
    return body;
  }
}

type Extras = { details?: ErrorBody['details']; retryAfter?: number; headers?: Record<string, string | number> };

interface HttpErrorSpec<A extends unknown[]> {
  statusCode: number;
  code: string;
  title: string | ((...args: NoInfer<A>) => string);
  /** The message template; its parameters are the constructor's. */
  message: (...args: A) => string;
  extras?: (...args: NoInfer<A>) => Extras;
}

/** One catalogue entry (cf. @fastify/error's createError): a class whose constructor takes the template's arguments. */
export interface HttpErrorClass<A extends unknown[]> {
  new (...args: A): HttpError;
  readonly code: string;
  readonly statusCode: number;
}

function defineHttpError<A extends unknown[]>(name: string, spec: HttpErrorSpec<A>): HttpErrorClass<A> {
  const cls = class extends HttpError {
    static readonly code = spec.code;
    static readonly statusCode = spec.statusCode;
    constructor(...args: A) {
      super({
        statusCode: spec.statusCode,
        code: spec.code,
        title: typeof spec.title === 'string' ? spec.title : spec.title(...args),
        message: spec.message(...args),
        ...spec.extras?.(...args),
      });
      this.name = name;
    }
  };
  Object.defineProperty(cls, 'name', { value: name });
  return cls;
}

export function truncate(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}...` : s;
}

/** Seconds a client waits before retrying after a dependency outage (503). */
export const RETRY_AFTER_SECONDS = 5;

// --- The request itself -----------------------------------------------------------------------------------------

const VALIDATION_TITLES: Record<string, string> = {
  body: 'Invalid request body',
  params: 'Invalid path parameter',
  querystring: 'Invalid query string',
  headers: 'Invalid request headers',
};

/** The route's schema refused the request; `problems` has one line per problem (errors.ts describeValidation). */
export const ValidationFailed = defineHttpError('ValidationFailed', {
  statusCode: 400,
  code: 'VALIDATION_FAILED',
  title: (...[context]) => VALIDATION_TITLES[context ?? ''] ?? 'Invalid request',
  message: (_context: string | undefined, problems: string[], fallback: string) => problems[0] ?? fallback,
  extras: (...[, problems]) => ({ details: problems }),
});

export const InvalidJson = defineHttpError('InvalidJson', {
  statusCode: 400,
  code: 'INVALID_JSON',
  title: 'Invalid JSON',
  message: (reason: 'empty' | 'malformed') =>
    reason === 'empty' ? 'The request body is empty; send a JSON object' : 'The request body is not valid JSON',
});

export const ContentLengthMismatch = defineHttpError('ContentLengthMismatch', {
  statusCode: 400,
  code: 'CONTENT_LENGTH_MISMATCH',
  title: 'Bad request',
  message: () => 'Content-Length does not match the length of the body',
});

export const MalformedUrl = defineHttpError('MalformedUrl', {
  statusCode: 400,
  code: 'MALFORMED_URL',
  title: 'Bad request',
  message: () => 'The URL is malformed',
});

/** Node's HTTP parser refused the request (answered on the raw socket, errors.ts clientErrorHandler). */
export const MalformedHttp = defineHttpError('MalformedHttp', {
  statusCode: 400,
  code: 'MALFORMED_HTTP',
  title: 'Bad request',
  message: () => 'The request is not valid HTTP/1.1',
});

export const UnsupportedMediaType = defineHttpError('UnsupportedMediaType', {
  statusCode: 415,
  code: 'UNSUPPORTED_MEDIA_TYPE',
  title: 'Unsupported media type',
  message: (contentType: string) =>
    contentType
      ? `Content-Type '${truncate(contentType, 100)}' is not supported; send application/json`
      : 'The request has a body but no Content-Type; send application/json',
});

export const PayloadTooLarge = defineHttpError('PayloadTooLarge', {
  statusCode: 413,
  code: 'PAYLOAD_TOO_LARGE',
  title: 'Payload too large',
  message: (limitBytes: number) => `The request body is larger than ${limitBytes} bytes`,
});

export const UrlTooLong = defineHttpError('UrlTooLong', {
  statusCode: 414,
  code: 'URI_TOO_LONG',
  title: 'URI too long',
  message: (length: number, max: number) => `The request URL is ${length} characters long; at most ${max} are accepted`,
});

export const PathParameterTooLong = defineHttpError('PathParameterTooLong', {
  statusCode: 414,
  code: 'PATH_PARAMETER_TOO_LONG',
  title: 'URI too long',
  message: () => 'A path parameter is too long',
});

export const RequestTimeout = defineHttpError('RequestTimeout', {
  statusCode: 408,
  code: 'REQUEST_TIMEOUT',
  title: 'Request timeout',
  message: (timeoutMs: number) => `The request was not received within ${timeoutMs} ms`,
});

export const HeadersTooLarge = defineHttpError('HeadersTooLarge', {
  statusCode: 431,
  code: 'HEADERS_TOO_LARGE',
  title: 'Request header fields too large',
  message: (maxBytes: number) => `The request line and headers exceed ${maxBytes} bytes`,
});

export const ExpectationFailed = defineHttpError('ExpectationFailed', {
  statusCode: 417,
  code: 'EXPECTATION_FAILED',
  title: 'Expectation failed',
  message: () => 'Only Expect: 100-continue is supported',
});

/** Any other 4xx Fastify or a plugin raises: its status's name as title, and as code (e.g. NOT_ACCEPTABLE). */
export function clientError(status: number, message: string): HttpError {
  const title = STATUS_CODES[status] ?? 'Bad request';
  return new HttpError({ statusCode: status, code: title.toUpperCase().replace(/[^A-Z0-9]+/g, '_'), title, message });
}

export const InternalError = defineHttpError('InternalError', {
  statusCode: 500,
  code: 'INTERNAL_ERROR',
  title: 'Internal error',
  message: () => 'The request failed unexpectedly; it was logged',
});

// --- Routing ----------------------------------------------------------------------------------------------------

export const NotFound = defineHttpError('NotFound', {
  statusCode: 404,
  code: 'NOT_FOUND',
  title: 'Not found',
  message: (method: string, path: string) => `No route for ${method} ${truncate(path, 200)}`,
});

export const MethodNotAllowed = defineHttpError('MethodNotAllowed', {
  statusCode: 405,
  code: 'METHOD_NOT_ALLOWED',
  title: 'Method not allowed',
  message: (method: string, path: string, allowed: string[]) => `${method} is not allowed on ${truncate(path, 200)}; use ${allowed.join(', ')}`,
  extras: (_method, _path, allowed) => ({ headers: { Allow: allowed.join(', ') } }),
});

// --- Authentication and quotas ----------------------------------------------------------------------------------

export const ApiKeyRequired = defineHttpError('ApiKeyRequired', {
  statusCode: 401,
  code: 'API_KEY_REQUIRED',
  title: 'Unauthorized',
  message: () => 'An API key is required: send it in the X-API-Key header or as Authorization: Bearer <key>',
  extras: () => ({ headers: { 'WWW-Authenticate': 'Bearer' } }),
});

export const ApiKeyInvalid = defineHttpError('ApiKeyInvalid', {
  statusCode: 401,
  code: 'API_KEY_INVALID',
  title: 'Unauthorized',
  message: () => 'The API key is not valid',
  extras: () => ({ headers: { 'WWW-Authenticate': 'Bearer' } }),
});

export const AdminKeyRequired = defineHttpError('AdminKeyRequired', {
  statusCode: 401,
  code: 'ADMIN_KEY_REQUIRED',
  title: 'Unauthorized',
  message: () => 'The admin key is required in the X-Admin-Key header',
  extras: () => ({ headers: { 'WWW-Authenticate': 'X-Admin-Key' } }),
});

export const AdminKeyInvalid = defineHttpError('AdminKeyInvalid', {
  statusCode: 401,
  code: 'ADMIN_KEY_INVALID',
  title: 'Unauthorized',
  message: () => 'The admin key is not valid',
  extras: () => ({ headers: { 'WWW-Authenticate': 'X-Admin-Key' } }),
});

/** The quota refused the request; @fastify/rate-limit sets Retry-After and the X-RateLimit headers itself. */
export const RateLimited = defineHttpError('RateLimited', {
  statusCode: 429,
  code: 'RATE_LIMITED',
  title: 'Rate limit exceeded',
  message: (retryAfter: number) => `Too many requests; retry in ${retryAfter} s.`,
  extras: (retryAfter) => ({ retryAfter }),
});

/** The tenant's quota (TENANTS) refused the submission: its jobs per UTC day (Retry-After: the day's end) or its
 *  jobs in flight (retry once some of its jobs have finished; no Retry-After). */
export const TenantQuotaExceeded = defineHttpError('TenantQuotaExceeded', {
  statusCode: 429,
  code: 'TENANT_QUOTA_EXCEEDED',
  title: 'Tenant quota exceeded',
  message: (tenant: string, quota: 'day' | 'in-flight', limit: number, used: number, asked: number, _retryAfter?: number) =>
    quota === 'day'
      ? `Tenant '${tenant}' may submit ${limit} jobs per UTC day; ${used} were submitted today and this submission asks for ${asked} more. The quota renews at 00:00 UTC.`
      : `Tenant '${tenant}' may have ${limit} jobs in flight; ${used} are unfinished and this submission asks for ${asked} more. Retry once some have finished (GET /api/usage).`,
  extras: (_t, quota, limit, used, asked, retryAfter?: number) => ({
    details: { quota, limit, used, requested: asked },
    ...(retryAfter !== undefined ? { retryAfter } : {}),
  }),
});

export const NoTenant = defineHttpError('NoTenant', {
  statusCode: 404,
  code: 'TENANT_NOT_CONFIGURED',
  title: 'Not Found',
  message: () => 'This API key belongs to no tenant (TENANTS), so it has no quota to show',
});

// --- Lookups ----------------------------------------------------------------------------------------------------

export const InvalidTarget = defineHttpError('InvalidTarget', {
  statusCode: 400,
  code: 'INVALID_TARGET',
  title: 'Invalid target',
  message: (problems: string[]) => problems.join('; '),
  extras: (problems) => ({ details: problems }),
});

/** GET /api/lookup's `cursor` is not one this API handed out (job-cursor.ts). */
export const InvalidCursor = defineHttpError('InvalidCursor', {
  statusCode: 400,
  code: 'INVALID_CURSOR',
  title: 'Invalid cursor',
  message: () => 'The cursor is not valid; pass the nextCursor of a previous page unchanged, or omit it for the first page',
});

export const InvalidServices = defineHttpError('InvalidServices', {
  statusCode: 400,
  code: 'INVALID_SERVICES',
  title: 'Invalid services',
  message: (problems: string[]) => problems.join('; '),
  extras: (problems) => ({ details: problems }),
});

/** Both the target and the services are invalid. */
export const InvalidSubmission = defineHttpError('InvalidSubmission', {
  statusCode: 400,
  code: 'INVALID_SUBMISSION',
  title: 'Invalid request',
  message: (problems: string[]) => problems.join('; '),
  extras: (problems) => ({ details: problems }),
});

/** The target policy refuses the target (the same code as a worker's refusal after its own resolution). */
export const TargetNotAllowed = defineHttpError('TargetNotAllowed', {
  statusCode: 400,
  code: 'TARGET_REFUSED',
  title: 'Target not allowed',
  message: (reason: string) => reason,
});

/** `callback` of a submission is not a usable URL (not http(s), credentials in it, malformed). */
export const InvalidCallback = defineHttpError('InvalidCallback', {
  statusCode: 400,
  code: 'INVALID_CALLBACK',
  title: 'Invalid callback',
  message: (reason: string) => reason,
});

/** The callback URL's host is an address the target policy refuses (the same policy as lookup targets). */
export const CallbackNotAllowed = defineHttpError('CallbackNotAllowed', {
  statusCode: 400,
  code: 'CALLBACK_REFUSED',
  title: 'Callback not allowed',
  message: (reason: string) => `The callback URL is refused: ${reason}`,
});

/** A submission asked for a callback but CALLBACK_SECRET is not configured, so deliveries could not be signed. */
export const CallbacksDisabled = defineHttpError('CallbacksDisabled', {
  statusCode: 400,
  code: 'CALLBACKS_DISABLED',
  title: 'Callbacks not enabled',
  message: () => 'This suite does not send completion callbacks (CALLBACK_SECRET is not configured); submit without `callback`',
});

export const InvalidIdempotencyKey = defineHttpError('InvalidIdempotencyKey', {
  statusCode: 400,
  code: 'INVALID_IDEMPOTENCY_KEY',
  title: 'Invalid Idempotency-Key',
  message: () => 'Idempotency-Key must be 1-255 printable ASCII characters without spaces',
});

export const IdempotencyConflict = defineHttpError('IdempotencyConflict', {
  statusCode: 409,
  code: 'IDEMPOTENCY_CONFLICT',
  title: 'Idempotency key reused',
  message: (key: string, jobId: string) => `Idempotency-Key '${truncate(key, 60)}' was already used for job ${jobId} with a different body`,
});

export const InvalidJobId = defineHttpError('InvalidJobId', {
  statusCode: 400,
  code: 'INVALID_JOB_ID',
  title: 'Invalid job id',
  message: (raw: string) => `'${truncate(raw, 100)}' is not a UUID`,
});

export const JobNotFound = defineHttpError('JobNotFound', {
  statusCode: 404,
  code: 'JOB_NOT_FOUND',
  title: 'Job not found',
  message: (jobId: string) => `No job with id ${jobId}`,
});

export const BatchNotFound = defineHttpError('BatchNotFound', {
  statusCode: 404,
  code: 'BATCH_NOT_FOUND',
  title: 'Batch not found',
  message: (batchId: string) => `No batch with id ${batchId}`,
});

export const InvalidBatchId = defineHttpError('InvalidBatchId', {
  statusCode: 400,
  code: 'INVALID_BATCH_ID',
  title: 'Invalid batch id',
  message: (raw: string) => `'${truncate(raw, 100)}' is not a UUID`,
});

/** Every item of a batch was refused: nothing was created; `details.rejected` lists each item's own error body. */
export const BatchRejected = defineHttpError('BatchRejected', {
  statusCode: 400,
  code: 'BATCH_REJECTED',
  title: 'Invalid request',
  message: (rejected: { index: number; error: ErrorBody }[]) => `No item of the batch was accepted (${rejected.length} refused; see details.rejected)`,
  extras: (rejected) => ({ details: { rejected } }),
});

export const JobAlreadyFinished = defineHttpError('JobAlreadyFinished', {
  statusCode: 409,
  code: 'JOB_ALREADY_FINISHED',
  title: 'Job already finished',
  message: (jobId: string, status: string) => `Job ${jobId} is already ${status}`,
});

// --- Dependencies -----------------------------------------------------------------------------------------------

/** Redis (the job store) failed: retry shortly. */
export const StoreUnavailable = defineHttpError('StoreUnavailable', {
  statusCode: 503,
  code: 'STORE_UNAVAILABLE',
  title: 'Service unavailable',
  message: () => 'The job store is unavailable; try again shortly',
  extras: () => ({ retryAfter: RETRY_AFTER_SECONDS }),
});

const BROKER_MESSAGES = {
  submission: 'The message broker is unavailable; the lookup was not accepted, try again shortly',
  'dead-letters': 'RabbitMQ is unavailable; try again shortly',
} as const;

/** RabbitMQ failed: a submission was not accepted (and undone), or a dead-letter operation could not run. */
export const BrokerUnavailable = defineHttpError('BrokerUnavailable', {
  statusCode: 503,
  code: 'BROKER_UNAVAILABLE',
  title: 'Service unavailable',
  message: (during: keyof typeof BROKER_MESSAGES) => BROKER_MESSAGES[during],
  extras: () => ({ retryAfter: RETRY_AFTER_SECONDS }),
});

// --- Dead letters (admin) ---------------------------------------------------------------------------------------

export const NothingSelected = defineHttpError('NothingSelected', {
  statusCode: 400,
  code: 'NOTHING_SELECTED',
  title: 'Nothing selected',
  message: (action: 'replay' | 'discard') =>
    action === 'replay' ? 'Give a messageId, or all: true to replay every message' : 'Give a messageId, or all=true to discard every message',
});

export const DeadLetterNotFound = defineHttpError('DeadLetterNotFound', {
  statusCode: 404,
  code: 'DEAD_LETTER_NOT_FOUND',
  title: 'Dead letter not found',
  message: (messageId: string) => `No dead-lettered message has messageId '${truncate(messageId, 100)}'`,
});

// --- Pinned resources -------------------------------------------------------------------------------------------

export const InvalidResourceKey = defineHttpError('InvalidResourceKey', {
  statusCode: 400,
  code: 'INVALID_RESOURCE_KEY',
  title: 'Invalid resource key',
  message: (problem: string) => problem,
});

/** The resource key or query is too long for a resource request (414). */
export const ResourceUriTooLong = defineHttpError('ResourceUriTooLong', {
  statusCode: 414,
  code: 'URI_TOO_LONG',
  title: 'URI too long',
  message: (problem: string) => problem,
});

/** The headers to forward are too large for a resource request (431). */
export const ResourceHeadersTooLarge = defineHttpError('ResourceHeadersTooLarge', {
  statusCode: 431,
  code: 'HEADERS_TOO_LARGE',
  title: 'Request header fields too large',
  message: (problem: string) => problem,
});

export const NoResourceWorker = defineHttpError('NoResourceWorker', {
  statusCode: 503,
  code: 'NO_RESOURCE_WORKER',
  title: 'Service unavailable',
  message: (_retryAfter: number) => 'No live resource worker can take this key; retry shortly',
  extras: (retryAfter) => ({ retryAfter }),
});

/** Redis or RabbitMQ failed while routing a resource request, or no owner could be reached in time. */
export const ResourceUnavailable = defineHttpError('ResourceUnavailable', {
  statusCode: 503,
  code: 'RESOURCE_UNAVAILABLE',
  title: 'Service unavailable',
  message: (reason: string, _retryAfter: number) => reason,
  extras: (_reason, retryAfter) => ({ retryAfter }),
});

/** The admin routes' directory (Redis) failed. */
export const ResourceDirectoryUnavailable = defineHttpError('ResourceDirectoryUnavailable', {
  statusCode: 503,
  code: 'RESOURCE_DIRECTORY_UNAVAILABLE',
  title: 'Service unavailable',
  message: () => 'The resource directory (Redis) is unavailable',
  extras: () => ({ retryAfter: RETRY_AFTER_SECONDS }),
});

type OwnerHeaders = { owner?: string; epoch?: number };
const ownerHeaders = ({ owner, epoch }: OwnerHeaders): Record<string, string> => ({
  ...(owner ? { 'X-Resource-Owner': owner } : {}),
  ...(epoch !== undefined ? { 'X-Resource-Epoch': String(epoch) } : {}),
});

export const ResourceTimeout = defineHttpError('ResourceTimeout', {
  statusCode: 504,
  code: 'RESOURCE_TIMEOUT',
  title: 'Gateway timeout',
  message: (key: string, timeoutMs: number, _owner: OwnerHeaders) =>
    `The owner of '${truncate(key, 200)}' did not answer within ${timeoutMs} ms; the request was abandoned`,
  extras: (_key, _timeoutMs, owner) => ({ headers: ownerHeaders(owner) }),
});

/**
 * One resource request failed with the status, title and message the router (or the owner) gave: the worker could
 * not accept it, it was too large to send, the owner's answer was too large or unreadable. Its code is the status's
 * name (PAYLOAD_TOO_LARGE, BAD_GATEWAY...).
 */
export function resourceRequestFailed(failure: { status: number; error: string; message: string } & OwnerHeaders): HttpError {
  const name = STATUS_CODES[failure.status] ?? 'Error';
  return new HttpError({
    statusCode: failure.status,
    code: name.toUpperCase().replace(/[^A-Z0-9]+/g, '_'),
    title: failure.error,
    message: failure.message,
    headers: ownerHeaders(failure),
  });
}

/** Titles and codes of the resource admin results that are errors (404, 409); their other fields go in `details`. */
const RESOURCE_ADMIN_ERRORS: Record<string, { title: string; code: string }> = {
  'not-pinned': { title: 'Key not pinned', code: 'NOT_PINNED' },
  'unknown-worker': { title: 'Unknown worker', code: 'UNKNOWN_WORKER' },
  'no-target': { title: 'No target worker', code: 'NO_TARGET' },
  'bad-target': { title: 'Bad target worker', code: 'BAD_TARGET' },
};

/** A resource admin result that is an error: NOT_PINNED, UNKNOWN_WORKER, NO_TARGET or BAD_TARGET. */
export function resourceAdminError(statusCode: number, result: { status: string; message: string } & Record<string, unknown>): HttpError {
  const { message, ...details } = result;
  const known = RESOURCE_ADMIN_ERRORS[result.status];
  return new HttpError({
    statusCode,
    code: known?.code ?? result.status.toUpperCase().replace(/-/g, '_'),
    title: known?.title ?? STATUS_CODES[statusCode] ?? 'Error',
    message: `${message.charAt(0).toUpperCase()}${message.slice(1)}`,
    details,
  });
}

import type { Config } from '@lookup/config';
import type { Logger } from '@lookup/logging';
import type { ErrorBody } from '@lookup/contracts';

/** One proxied HTTP request, as the owner of its key sees it. */
export interface ResourceRequest {
  requestId: string;
  /** The resource key (the path after /api/resources/, exact and case-sensitive). */
  key: string;
  /** The lease epoch this request was routed under (the fencing token). */
  epoch: number;
  method: string;
  /** The raw query string, without '?'. */
  query: string;
  /** Request headers, lower-case names (credentials and hop-by-hop headers removed by the API). */
  headers: Record<string, string>;
  body: Buffer;
}

/** What `handle` returns. A Buffer or string body is sent as is; anything else (object, array, number) as JSON. */
export interface ResourceResponse {
  status?: number;
  headers?: Record<string, string>;
  body?: unknown;
}

export interface ResourceContext {
  key: string;
  epoch: number;
  /** Aborted when the lease is lost, the resource is closing, or the API abandoned the request. */
  signal: AbortSignal;
  /**
   * Throws (CoordinationError 'LEASE_NOT_HELD') unless this worker still holds the key's lease, measured on the
   * monotonic clock at the moment of the call. Call it right before every side effect that must not happen
   * twice (a write to shared storage); the framework already checks before `open` and before each `handle`.
   */
  assertOwner(): void;
  logger: Logger;
  config: Readonly<Config>;
}

/**
 * A pinned-resource type. The suite does placement, leases, transport and failover; a type only says how to
 * open a resource, serve one request with it, and close it.
 *
 * Requests for one key are handled one at a time, in arrival order (`concurrency: 1`, the default). A type
 * whose resource is safe to use concurrently may raise `concurrency` (requests for one key then overlap, up to
 * that many at once; different keys always run concurrently).
 */
export interface ResourceType<R> {
  /** Shown in logs, e.g. 'sqlite'. */
  name: string;
  /** Per-key parallelism; 1 (serial, in arrival order) unless the resource is safe to share. */
  concurrency?: number;
  /** Once per process, before the worker takes requests (e.g. load a WebAssembly module). */
  setup?(ctx: { config: Readonly<Config>; logger: Logger }): Promise<void> | void;
  /**
   * Checks a request before anything is pinned or opened (key name, method, body): throw a ResourceHttpError to
   * refuse it. A refused request neither keeps its key's lease nor opens the resource. Called on the worker's
   * main thread for every request: keep it cheap. The same `request` object is then passed to `handle`.
   */
  accept?(request: ResourceRequest, ctx: { key: string; logger: Logger; config: Readonly<Config> }): Promise<void> | void;
  /** Opens (or creates) the resource for a key this worker now owns. Throw a ResourceHttpError to refuse the key. */
  open(key: string, ctx: ResourceContext): Promise<R> | R;
  handle(request: ResourceRequest, resource: R, ctx: ResourceContext): Promise<ResourceResponse> | ResourceResponse;
  /** Releases the resource. Called when the lease is lost or released, and on shutdown. Must not throw. */
  close(resource: R, ctx: { key: string; epoch: number; reason: string; logger: Logger }): Promise<void> | void;
}

/**
 * An error the client sees as it is: `status`, the suite's error body `{error, message, code?, details?}` (e.g. 400
 * `{error: 'SQL error', message: 'no such table: t', code: 'SQL_ERROR'}`), and extra headers if any.
 */
export class ResourceHttpError extends Error {
  readonly code = 'RESOURCE_HTTP_ERROR';
  readonly retryable = false;
  constructor(readonly status: number, readonly body: ErrorBody, readonly headers?: Record<string, string>) {
    super(body.message);
    this.name = 'ResourceHttpError';
  }
}

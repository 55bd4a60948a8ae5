/**
 * Errors that cross process or library boundaries carry a stable `code` and say whether retrying can help.
 * Match on `code` (or `retryable`), never on `instanceof`.
 */
export interface CodedError extends Error {
  code: string;
  retryable: boolean;
}

export class LookupError extends Error implements CodedError {
  readonly code: string;
  readonly retryable: boolean;
  constructor(code: string, message: string, options: { retryable: boolean; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LookupError';
    this.code = code;
    this.retryable = options.retryable;
  }
}

/** The lookup can never succeed for this input (e.g. ReverseDNS asked about a domain). Fails at once. */
export const permanentError = (code: string, message: string, cause?: unknown) =>
  new LookupError(code, message, { retryable: false, cause });

/** The lookup may succeed if tried again (timeouts, connection resets, 5xx). */
export const transientError = (code: string, message: string, cause?: unknown) =>
  new LookupError(code, message, { retryable: true, cause });

export function isCodedError(err: unknown): err is CodedError {
  return (
    typeof err === 'object' && err !== null && typeof (err as CodedError).code === 'string' &&
    typeof (err as CodedError).retryable === 'boolean'
  );
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

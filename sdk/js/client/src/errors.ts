/**
 * Typed errors, one class per error code the service API reports (the same codes as
 * tokenbank's Python SDK):
 *
 *   TokenbankError                 the server answered {"error": {"code", "message", ...}}
 *   ├── InsufficientTokensError    402 insufficient_tokens (.balance, .required)
 *   ├── InsufficientScopeError     403 insufficient_scope
 *   ├── NotFoundError              404 (customer_not_found, hold_not_found, ...)
 *   ├── ConflictError              409 (idempotency_key_reused, reservation_not_pending, ...)
 *   ├── ValidationError            422 (invalid_amount, unknown_tier, validation_error, ...)
 *   ├── RateLimitedError           429 (.retryAfterS)
 *   └── ServerError                5xx
 *   ConnectionError                no answer (after the retries)
 */

export interface ErrorDetails {
  code: string;
  message: string;
  [extra: string]: unknown;
}

export class TokenbankError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: ErrorDetails;

  constructor(status: number, details: ErrorDetails) {
    super(`${status} ${details.code}: ${details.message}`);
    this.name = new.target.name;
    this.status = status;
    this.code = details.code;
    this.details = details;
  }
}

export class InsufficientTokensError extends TokenbankError {
  get balance(): number | null {
    return typeof this.details.balance === "number" ? this.details.balance : null;
  }

  get required(): number | null {
    return typeof this.details.required === "number" ? this.details.required : null;
  }
}

export class InsufficientScopeError extends TokenbankError {}
export class NotFoundError extends TokenbankError {}
export class ConflictError extends TokenbankError {}
export class ValidationError extends TokenbankError {}
export class ServerError extends TokenbankError {}

export class RateLimitedError extends TokenbankError {
  retryAfterS: number | null = null;
}

export class ConnectionError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ConnectionError";
  }
}

const BY_CODE: Record<string, typeof TokenbankError> = {
  insufficient_tokens: InsufficientTokensError,
  insufficient_scope: InsufficientScopeError,
};

const BY_STATUS: Record<number, typeof TokenbankError> = {
  402: InsufficientTokensError,
  403: InsufficientScopeError,
  404: NotFoundError,
  409: ConflictError,
  422: ValidationError,
  429: RateLimitedError,
};

/** The typed error for an error response (``body`` is its parsed JSON, if any). */
export function errorFrom(status: number, body: unknown, retryAfter?: string | null): TokenbankError {
  const raw = (body as { error?: unknown } | null)?.error;
  const details: ErrorDetails =
    raw && typeof raw === "object" && typeof (raw as ErrorDetails).code === "string"
      ? (raw as ErrorDetails)
      : { code: "unknown_error", message: `HTTP ${status}` };
  const Cls = BY_CODE[details.code] ?? BY_STATUS[status] ?? (status >= 500 ? ServerError : TokenbankError);
  const error = new Cls(status, details);
  if (error instanceof RateLimitedError && retryAfter) {
    const seconds = Number(retryAfter);
    error.retryAfterS = Number.isFinite(seconds) ? seconds : null;
  }
  return error;
}

/**
 * Every failed API call becomes an ApiError carrying the server's error `code`
 * (the UI translates codes, not English sentences) plus any extra fields such
 * as `balance` / `required` on `insufficient_tokens`.
 */
export class ApiError extends Error {
  /**
   * The HTTP status of the response that carried the error: 0 when none arrived, and
   * the stream's own 200 for an error event on a stream. Decide by `code`, not status.
   */
  readonly status: number;
  readonly code: string;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(status: number, code: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }

  /** A numeric extra field, e.g. `balance` on insufficient_tokens. */
  num(field: string): number | null {
    const value = this.details[field];
    return typeof value === "number" && Number.isFinite(value) ? value : null;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** For a body without a code (a proxy's page, an older server): the code the app would send. */
function codeForStatus(status: number): string {
  if (status === 401) return "not_authenticated";
  if (status === 403) return "forbidden";
  if (status === 404) return "not_found";
  if (status === 405) return "method_not_allowed";
  if (status === 422) return "validation_error";
  if (status === 429) return "rate_limited";
  return "unknown";
}

/** Parses `{"error": {code, message, ...}}`, tolerating FastAPI's `{"detail": ...}` too. */
export function toApiError(status: number, body: unknown): ApiError {
  if (isRecord(body) && isRecord(body.error)) {
    const { code, message, ...rest } = body.error;
    return new ApiError(
      status,
      typeof code === "string" && code ? code : codeForStatus(status),
      typeof message === "string" ? message : "",
      rest,
    );
  }
  if (isRecord(body) && "detail" in body) {
    const detail = body.detail;
    if (typeof detail === "string") return new ApiError(status, codeForStatus(status), detail);
    return new ApiError(status, codeForStatus(status), "", { errors: detail });
  }
  return new ApiError(status, codeForStatus(status), "");
}

export function networkError(cause: unknown): ApiError {
  const message = cause instanceof Error ? cause.message : String(cause);
  return new ApiError(0, "network_error", message);
}

export interface FieldProblem {
  field: string;
  message: string;
}

/**
 * Field-level problems in a 422, whichever way the server lists them:
 * `field` on the error, `fields: {name: msg}`, or a list of `{field|loc, message|msg}`.
 */
export function fieldProblems(error: ApiError): FieldProblem[] {
  const out: FieldProblem[] = [];
  const { field, fields, errors } = error.details;
  if (typeof field === "string") out.push({ field, message: error.message });
  if (isRecord(fields)) {
    for (const [name, msg] of Object.entries(fields)) {
      out.push({ field: name, message: typeof msg === "string" ? msg : error.message });
    }
  }
  if (Array.isArray(errors)) {
    for (const item of errors) {
      if (!isRecord(item)) continue;
      const loc = Array.isArray(item.loc) ? item.loc[item.loc.length - 1] : item.field;
      const msg = typeof item.message === "string" ? item.message : item.msg;
      // Pydantic prefixes custom rules with "Value error, "; people need only the rule.
      const text = typeof msg === "string" ? msg.replace(/^Value error, /, "") : "";
      if (typeof loc === "string") out.push({ field: loc, message: text });
    }
  }
  return out;
}

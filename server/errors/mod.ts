/**
 * One typed error family for the whole server. Every failure a client can see is a
 * {@link TabAgentError} with a stable `code`; the front doors map it once each to HTTP
 * `application/problem+json` (RFC 9457), gRPC status codes and native-messaging error frames.
 *
 * @example
 * ```ts
 * throw new TabAgentError("not_found", "No conversation with id 'c1'", { id: "c1" });
 * ```
 * @module
 */

/** Stable machine-readable error codes, with the HTTP status and gRPC status code of each. */
export const ERROR_CODES = {
  bad_request: { status: 400, grpc: 3, title: "Bad request" },
  validation_failed: { status: 400, grpc: 3, title: "Validation failed" },
  context_overflow: { status: 400, grpc: 11, title: "Context length exceeded" },
  unauthorized: { status: 401, grpc: 16, title: "Unauthorized" },
  forbidden: { status: 403, grpc: 7, title: "Forbidden" },
  forbidden_host: { status: 403, grpc: 7, title: "Host not allowed" },
  not_found: { status: 404, grpc: 5, title: "Not found" },
  method_not_allowed: { status: 405, grpc: 12, title: "Method not allowed" },
  conflict: { status: 409, grpc: 6, title: "Conflict" },
  gone: { status: 410, grpc: 5, title: "Gone" },
  payload_too_large: { status: 413, grpc: 8, title: "Payload too large" },
  unsupported_media_type: { status: 415, grpc: 3, title: "Unsupported media type" },
  range_not_satisfiable: { status: 416, grpc: 11, title: "Range not satisfiable" },
  checksum_mismatch: { status: 422, grpc: 10, title: "Checksum mismatch" },
  too_many_requests: { status: 429, grpc: 8, title: "Too many requests" },
  cancelled: { status: 499, grpc: 1, title: "Cancelled" },
  internal: { status: 500, grpc: 13, title: "Internal error" },
  not_implemented: { status: 501, grpc: 12, title: "Not implemented" },
  upstream_failed: { status: 502, grpc: 14, title: "Upstream failed" },
  unavailable: { status: 503, grpc: 14, title: "Service unavailable" },
  timeout: { status: 504, grpc: 4, title: "Timed out" },
  insufficient_storage: { status: 507, grpc: 8, title: "Insufficient storage" },
  config_invalid: { status: 500, grpc: 9, title: "Invalid configuration" },
  storage_corrupt: { status: 500, grpc: 15, title: "Storage corrupt" },
} as const;

/** A stable error code: part of the public API, never renamed. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Extra, code-specific members copied into the problem document (e.g. `errors`, `limit`). */
export type ErrorExtensions = Record<string, unknown>;

/** The one error class the server throws on purpose. */
export class TabAgentError extends Error {
  /** The stable code clients branch on. */
  readonly code: ErrorCode;
  /** Extra members for the problem document. */
  readonly extensions: ErrorExtensions;

  constructor(code: ErrorCode, message: string, extensions: ErrorExtensions = {}, options?: ErrorOptions) {
    super(message, options);
    this.name = "TabAgentError";
    this.code = code;
    this.extensions = extensions;
  }

  /** HTTP status for this error. */
  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  /** gRPC status code for this error. */
  get grpcStatus(): number {
    return ERROR_CODES[this.code].grpc;
  }
}

/** An RFC 9457 problem document as the server sends it. */
export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance?: string;
  request_id?: string;
  [extension: string]: unknown;
}

/** The `type` URI of a problem: stable, documents the code. */
export function problemType(code: ErrorCode): string {
  return `https://tabagent.dev/problems/${code.replaceAll("_", "-")}`;
}

/**
 * Turns anything thrown into a {@link TabAgentError}. Unknown errors become `internal` and keep
 * the original as `cause` for the log, never for the client.
 */
export function toTabAgentError(error: unknown): TabAgentError {
  if (error instanceof TabAgentError) return error;
  if (error instanceof DOMException && (error.name === "AbortError" || error.name === "TimeoutError")) {
    return new TabAgentError(error.name === "TimeoutError" ? "timeout" : "cancelled", error.message, {}, {
      cause: error,
    });
  }
  return new TabAgentError("internal", "An internal error occurred", {}, { cause: error });
}

/** Builds the problem document for an error. */
export function toProblem(
  error: TabAgentError,
  context: { instance?: string; requestId?: string } = {},
): ProblemDocument {
  const entry = ERROR_CODES[error.code];
  const doc: ProblemDocument = {
    ...error.extensions,
    type: problemType(error.code),
    title: entry.title,
    status: entry.status,
    detail: error.message,
    code: error.code,
  };
  if (context.instance) doc.instance = context.instance;
  if (context.requestId) doc.request_id = context.requestId;
  return doc;
}

/** One issue of a failed validation, as clients see it in `errors`. */
export interface FieldIssue {
  /** Dotted path of the offending field, `""` for the whole value. */
  field: string;
  message: string;
}

/** Minimal shape of a zod issue, so this module does not depend on zod. */
interface IssueLike {
  path: ReadonlyArray<PropertyKey>;
  message: string;
  /** zod's issue code, e.g. `invalid_type`. */
  code?: string;
  /** A failed union's issues, one list per alternative (zod's `invalid_union`). */
  errors?: ReadonlyArray<ReadonlyArray<IssueLike>>;
}

/** Whether an alternative of a union failed on the value's very type (a string where it takes an array). */
function wrongType(branch: ReadonlyArray<IssueLike>): boolean {
  return branch.some((issue) => issue.path.length === 0 && issue.code === "invalid_type");
}

/**
 * The issues to report for `issue`: a failed union's "Invalid input" says nothing, so it gives way
 * to the issues of the alternative the value came closest to: one whose type it has (an array of
 * parts with a bad part is closer to the array alternative than to the string one), then the one
 * with the fewest issues. They are reported under the union's path.
 */
function explain(issue: IssueLike, prefix: ReadonlyArray<PropertyKey> = []): FieldIssue[] {
  const path = [...prefix, ...issue.path];
  const branches = issue.errors?.filter((branch) => branch.length > 0) ?? [];
  if (branches.length) {
    const score = (branch: ReadonlyArray<IssueLike>) => (wrongType(branch) ? 1_000_000 : 0) + branch.length;
    const closest = branches.reduce((best, branch) => score(branch) < score(best) ? branch : best);
    return closest.flatMap((inner) => explain(inner, path));
  }
  return [{ field: path.map(String).join("."), message: issue.message }];
}

/** Builds a `validation_failed` error naming each offending field. */
export function validationError(where: string, issues: ReadonlyArray<IssueLike>): TabAgentError {
  const errors: FieldIssue[] = issues.flatMap((issue) => explain(issue));
  const first = errors[0];
  const summary = first ? `${first.field || where}: ${first.message}` : "invalid input";
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : "";
  return new TabAgentError("validation_failed", `Invalid ${where}: ${summary}${more}`, { errors });
}

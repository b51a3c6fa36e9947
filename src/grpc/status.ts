/**
 * gRPC outcomes in the terms the one classifier reads (pure: numbers and strings in, numbers and
 * strings out). A gRPC call's status becomes an HTTP-like status on the `MeshResponse` — the
 * mapping of google.rpc.Code (`google/rpc/code.proto`) — so the default classifier, the retry
 * layer, the breakers, outlier detection and the counters treat gRPC calls by the rules they
 * already have: UNAVAILABLE is a 503 (resent when the method is idempotent), RESOURCE_EXHAUSTED
 * a 429 (resent, after the server's pushback as `Retry-After`), DEADLINE_EXCEEDED a 504, a
 * NOT_FOUND a 404 that trips no breaker. The caller never sees these numbers: it gets the gRPC
 * code back (`grpc-status`), as grpc-js reports it.
 *
 * A failure before any connection existed ("No connection established", name resolution) is
 * reported with the socket's error code, so `neverReachedServer` — the classifier's own list —
 * decides that it was never sent and may be resent for any method (Finagle's requeue).
 */
import { neverReachedServer } from "../core/classifier.js";
import { ErrorCodes, isWeftError } from "../core/errors.js";

export { GRPC_STATUS_NAMES } from "../core/grpc-status.js";

/** The codes weft itself produces, by name. */
export const Code = Object.freeze({
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  ABORTED: 10,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
});

/** HTTP status by gRPC code: google.rpc.Code's mapping (CANCELLED as nginx's 499, "client closed request"). */
const HTTP_BY_CODE: readonly number[] = [
  200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401,
];

/**
 * The HTTP-like status of a gRPC outcome, for the classifier. RESOURCE_EXHAUSTED raised by the
 * client itself for a message over the size limit is a 413: sending it again would fail the same
 * way, so it is neither resent nor counted against the endpoint.
 */
export function httpStatusOf(code: number, details: string): number {
  if (code === Code.RESOURCE_EXHAUSTED && /^(?:Received|Sent) message larger than max/.test(details)) return 413;
  return HTTP_BY_CODE[code] ?? 500;
}

/** The gRPC code of a response that did not come from a gRPC server (a fallback's, a fault's): the mapping reversed. */
export function codeOfHttpStatus(status: number): number {
  if (status < 300) return Code.OK;
  switch (status) {
    case 400:
      return Code.INVALID_ARGUMENT;
    case 401:
      return Code.UNAUTHENTICATED;
    case 403:
      return Code.PERMISSION_DENIED;
    case 404:
      return Code.NOT_FOUND;
    case 409:
      return Code.ABORTED;
    case 413:
    case 429:
      return Code.RESOURCE_EXHAUSTED;
    case 499:
      return Code.CANCELLED;
    case 501:
      return Code.UNIMPLEMENTED;
    case 502:
    case 503:
      return Code.UNAVAILABLE;
    case 504:
      return Code.DEADLINE_EXCEEDED;
    default:
      return status >= 500 ? Code.INTERNAL : Code.UNKNOWN;
  }
}

/**
 * A `Retry-After` meaning "do not retry": a year, past any wait the retry layer honours (its
 * `retryAfterMaxMs`, 30 s by default) and any deadline, so the response goes back at once.
 */
export const NEVER_RETRY_AFTER = "31536000";

/**
 * `grpc-retry-pushback-ms` (gRPC A6) as a `Retry-After` value in seconds with the milliseconds as
 * a fraction (`250` → `0.25`), which the retry layer reads to the millisecond; a negative or
 * unreadable pushback means "do not retry" (`NEVER_RETRY_AFTER`); undefined when there is none
 * (the retry layer's backoff then applies).
 */
export function retryAfterOfPushback(pushback: string | undefined): string | undefined {
  if (pushback === undefined) return undefined;
  const ms = pushback.trim();
  if (!/^\d+$/.test(ms)) return NEVER_RETRY_AFTER;
  return String(Number(ms) / 1000);
}

/**
 * What grpc-js says when a call failed before it had a connection: its pick_first / round_robin
 * pickers' "No connection established. Last error: …", and the resolver's "Name resolution
 * failed …". Pinned by test/integration/grpc.test.ts against the installed grpc-js.
 */
const BEFORE_CONNECTION = /^(?:[a-z_]+: )?(?:No connection established|Name resolution failed)/;
const ERRNO = /\b(E[A-Z]{3,}|EAI_AGAIN)\b/g;

/**
 * The socket error code of an UNAVAILABLE that was never sent — one the classifier's own list
 * (`neverReachedServer`) calls safe to resend for any method, such as ECONNREFUSED — or null
 * when the call may have reached the server (then only an idempotent method is resent).
 */
export function unsentCode(code: number, details: string): string | null {
  if (code !== Code.UNAVAILABLE || !BEFORE_CONNECTION.test(details)) return null;
  for (const match of details.matchAll(ERRNO)) {
    const errno = match[1] as string;
    if (neverReachedServer({ code: errno })) return errno;
  }
  return null;
}

/**
 * The gRPC code a caller gets for an error of weft's own: a deadline is DEADLINE_EXCEEDED, no
 * endpoint (none ready, every breaker open, the client closed) UNAVAILABLE, a client-side limit
 * RESOURCE_EXHAUSTED; an exhausted budget or attempts say what the last attempt said. Anything
 * else (a middleware's error) is UNKNOWN, or UNAVAILABLE when it was never sent.
 */
export function codeOfError(error: unknown): number {
  if (isWeftError(error)) {
    if (error.code === ErrorCodes.BUDGET_EXHAUSTED || error.code === ErrorCodes.ATTEMPTS)
      return error.cause === undefined ? Code.UNAVAILABLE : codeOfError(error.cause);
    // The rest — no endpoints, breaker open, client closed, TLS or identity, fault injected, a
    // route's missing backend, a refused stream — mean no server could take the call.
    return CODE_OF_WEFT_ERROR.get(error.code) ?? Code.UNAVAILABLE;
  }
  const status = (error as { grpcStatus?: { code?: unknown } } | null)?.grpcStatus?.code;
  if (typeof status === "number") return status;
  return neverReachedServer(error) ? Code.UNAVAILABLE : Code.UNKNOWN;
}

const CODE_OF_WEFT_ERROR = new Map<string, number>([
  [ErrorCodes.TOTAL_TIMEOUT, Code.DEADLINE_EXCEEDED],
  [ErrorCodes.ATTEMPT_TIMEOUT, Code.DEADLINE_EXCEEDED],
  [ErrorCodes.CONCURRENCY_LIMIT, Code.RESOURCE_EXHAUSTED],
  [ErrorCodes.RATE_LIMITED, Code.RESOURCE_EXHAUSTED],
  [ErrorCodes.REQUEST_ABORTED, Code.CANCELLED],
  [ErrorCodes.HEDGE_LOST, Code.CANCELLED],
  [ErrorCodes.INVALID_OPTIONS, Code.INTERNAL],
  [ErrorCodes.BODY_USED, Code.INTERNAL],
]);

/**
 * Errors weft owns. Each has a stable `code`, the `cause` underneath and the number of attempts
 * made. `isWeftError()` works across copies of the package (the brand is a `Symbol.for`, as undici
 * brands its errors). Errors weft does not own — a caller's abort reason, a transport's socket
 * error on the last attempt — pass through unchanged.
 */
const BRAND = Symbol.for("weft.error");

export const ErrorCodes = Object.freeze({
  INVALID_OPTIONS: "WEFT_ERR_INVALID_OPTIONS",
  NO_ENDPOINTS: "WEFT_ERR_NO_ENDPOINTS",
  ATTEMPT_TIMEOUT: "WEFT_ERR_ATTEMPT_TIMEOUT",
  TOTAL_TIMEOUT: "WEFT_ERR_TOTAL_TIMEOUT",
  BREAKER_OPEN: "WEFT_ERR_BREAKER_OPEN",
  BUDGET_EXHAUSTED: "WEFT_ERR_BUDGET_EXHAUSTED",
  ATTEMPTS: "WEFT_ERR_ATTEMPTS",
  CONCURRENCY_LIMIT: "WEFT_ERR_CONCURRENCY_LIMIT",
  RATE_LIMITED: "WEFT_ERR_RATE_LIMITED",
  CLIENT_CLOSED: "WEFT_ERR_CLIENT_CLOSED",
  BODY_USED: "WEFT_ERR_BODY_USED",
  REQUEST_ABORTED: "WEFT_ERR_REQUEST_ABORTED",
  /** The server's certificate did not carry the SPIFFE ID the client expects. */
  IDENTITY: "WEFT_ERR_IDENTITY",
  /** A TLS handshake failed: expired certificate, unknown CA, wrong name, no client certificate… */
  TLS: "WEFT_ERR_TLS",
  /** An attempt cancelled because another attempt of the same call (a hedge) answered first. */
  HEDGE_LOST: "WEFT_ERR_HEDGE_LOST",
  /** A route's fault injection aborted the call (a chaos drill). */
  FAULT_INJECTED: "WEFT_ERR_FAULT_INJECTED",
  /** A route names a backend service that is not a client of the mesh. */
  NO_ROUTE_BACKEND: "WEFT_ERR_NO_ROUTE_BACKEND",
  /** An HTTP/2 server refused a stream before processing it (above its GOAWAY's last stream id, or REFUSED_STREAM). */
  REFUSED_STREAM: "WEFT_ERR_REFUSED_STREAM",
});

export type WeftErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface WeftErrorOptions {
  cause?: unknown;
  /** Attempts made before the error (0 when the call never reached a transport). */
  attempts?: number;
  /** Replaces the default message. */
  message?: string;
}

export class WeftError extends Error {
  readonly code: WeftErrorCode;
  readonly attempts: number;

  constructor(code: WeftErrorCode, message: string, options: WeftErrorOptions = {}) {
    super(options.message ?? message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.attempts = options.attempts ?? 0;
    Object.defineProperty(this, BRAND, { value: true });
  }

  override get name(): string {
    return this.constructor.name;
  }
}

/** True for any weft error, including one thrown by another copy of the package. */
export function isWeftError(value: unknown): value is WeftError {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}

export class InvalidOptionsError extends WeftError {
  /** The option's path, e.g. `timeout.attemptMs`. */
  readonly option: string;
  constructor(option: string, message: string) {
    super(ErrorCodes.INVALID_OPTIONS, message);
    this.option = option;
  }
}

export class NoEndpointsError extends WeftError {
  constructor(service: string, options?: WeftErrorOptions) {
    super(ErrorCodes.NO_ENDPOINTS, `no endpoints available for service "${service}"`, options);
  }
}

export class AttemptTimeoutError extends WeftError {
  readonly timeoutMs: number;
  constructor(timeoutMs: number, options?: WeftErrorOptions) {
    super(ErrorCodes.ATTEMPT_TIMEOUT, `attempt timed out after ${timeoutMs} ms`, options);
    this.timeoutMs = timeoutMs;
  }
}

export class TotalTimeoutError extends WeftError {
  readonly timeoutMs: number;
  constructor(timeoutMs: number, options?: WeftErrorOptions) {
    super(ErrorCodes.TOTAL_TIMEOUT, `call exceeded its total deadline of ${timeoutMs} ms`, options);
    this.timeoutMs = timeoutMs;
  }
}

export class ClientClosedError extends WeftError {
  constructor(service: string) {
    super(ErrorCodes.CLIENT_CLOSED, `client for service "${service}" is closed`);
  }
}

export class BodyUsedError extends WeftError {
  constructor() {
    super(ErrorCodes.BODY_USED, "response body has already been read");
  }
}

export class BreakerOpenError extends WeftError {
  /** The endpoint whose breaker refused the attempt; undefined when every endpoint's is open. */
  readonly endpoint: string | undefined;
  constructor(service: string, options?: WeftErrorOptions & { endpoint?: string }) {
    super(
      ErrorCodes.BREAKER_OPEN,
      options?.endpoint === undefined
        ? `every endpoint of service "${service}" has its circuit breaker open`
        : `the circuit breaker of ${options.endpoint} (service "${service}") is open`,
      options,
    );
    this.endpoint = options?.endpoint;
  }
}

/** Retries stopped because the retry budget had no token left; `cause` is the last failure. */
export class BudgetExhaustedError extends WeftError {
  constructor(service: string, options?: WeftErrorOptions) {
    super(ErrorCodes.BUDGET_EXHAUSTED, `retry budget of service "${service}" is exhausted`, options);
  }
}

/** Every allowed attempt failed with an error; `cause` is the last one. */
export class AttemptsExhaustedError extends WeftError {
  constructor(service: string, options?: WeftErrorOptions) {
    super(ErrorCodes.ATTEMPTS, `all ${options?.attempts ?? 0} attempts to service "${service}" failed`, options);
  }
}

export class ConcurrencyLimitError extends WeftError {
  constructor(service: string, reason: string, options?: WeftErrorOptions) {
    super(ErrorCodes.CONCURRENCY_LIMIT, `concurrency limit of service "${service}" reached: ${reason}`, options);
  }
}

export class RateLimitedError extends WeftError {
  constructor(service: string, options?: WeftErrorOptions) {
    super(ErrorCodes.RATE_LIMITED, `client-side rate limit of service "${service}" reached`, options);
  }
}

/**
 * The request being served was abandoned by its caller (the connection closed before the response
 * finished): the reason the calls made for it are cancelled with.
 */
export class RequestAbortedError extends WeftError {
  constructor(service: string, method: string, path: string) {
    super(
      ErrorCodes.REQUEST_ABORTED,
      `the caller of ${method} ${path} (service "${service}") went away before the response finished`,
    );
  }
}

/**
 * A short, stable name for an error: its `code` (`WEFT_ERR_ATTEMPT_TIMEOUT`, `ECONNREFUSED`), a
 * code in its cause, or its class name. Used for `error.type` on spans and for event reasons.
 */
export function errorCode(error: unknown): string {
  if (typeof error === "object" && error !== null) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === "string") return code;
    const causeCode = (error as { cause?: { code?: unknown } }).cause?.code;
    if (typeof causeCode === "string") return causeCode;
    if (error instanceof Error) return error.name;
  }
  return "_OTHER";
}

/**
 * The reason a losing attempt of a hedged call is cancelled with, once another attempt answered
 * first. The caller never sees it (the winner's answer is the call's); the classifier calls it
 * ignorable (the call's own cancellation reason), so it counts against no endpoint.
 */
export class HedgeLostError extends WeftError {
  constructor(options?: WeftErrorOptions) {
    super(ErrorCodes.HEDGE_LOST, "cancelled: another attempt of the same call answered first", options);
  }
}

/** A route's fault injection aborted the call (`fault.abort` with `error: true`): a chaos drill, not a real failure. */
export class FaultInjectedError extends WeftError {
  /** The route whose fault policy aborted the call. */
  readonly route: string;
  constructor(service: string, route: string) {
    super(ErrorCodes.FAULT_INJECTED, `fault injected by route "${route}" of "${service}": the call was aborted`);
    this.route = route;
  }
}

/** A route sends to another service of the mesh, and the mesh has no client for it. */
export class NoRouteBackendError extends WeftError {
  readonly backend: string;
  constructor(service: string, route: string, backend: string) {
    super(
      ErrorCodes.NO_ROUTE_BACKEND,
      `route "${route}" of "${service}" sends to service "${backend}", which has no client in this mesh: create it with mesh.client("${backend}", …)`,
    );
    this.backend = backend;
  }
}

/**
 * An HTTP/2 server refused a stream before processing any of it: the stream's id was above the
 * last-stream-id of the server's GOAWAY, or the server reset it with REFUSED_STREAM (RFC 9113
 * §8.7: "the request has not been processed"). The classifier treats it as never sent, so it is
 * resent for any method, POST included (Finagle's requeue), on another endpoint or a new session.
 */
export class RefusedStreamError extends WeftError {
  /** The origin the stream was sent to. */
  readonly endpoint: string;
  /** The refused stream's id (undefined when it never got one). */
  readonly streamId: number | undefined;
  /** The last stream id of the GOAWAY that refused it; undefined for a REFUSED_STREAM reset. */
  readonly lastStreamId: number | undefined;
  constructor(endpoint: string, streamId: number | undefined, lastStreamId: number | undefined, cause?: unknown) {
    super(
      ErrorCodes.REFUSED_STREAM,
      lastStreamId === undefined
        ? `${endpoint} refused HTTP/2 stream ${streamId ?? "(unsent)"} (REFUSED_STREAM) before processing it: safe to resend`
        : `${endpoint} sent GOAWAY with last stream ${lastStreamId}: stream ${streamId ?? "(unsent)"} was not processed, safe to resend`,
      { cause },
    );
    this.endpoint = endpoint;
    this.streamId = streamId;
    this.lastStreamId = lastStreamId;
  }
}

/**
 * One classifier (Finagle's ResponseClassifier) decides what an outcome means, and retry, the
 * breaker, outlier detection, the balancer's load and the metrics all use its answer, so they
 * never disagree about whether a call failed.
 *
 * - `success`: the endpoint did its job.
 * - `retryable`: a failure that is safe to send again (see the rules below).
 * - `overloaded`: the endpoint turned the request away before doing any work (a `weft/server`
 *   load shed: 503 with `x-weft-shed`). Safe to resend for any method, to another endpoint; it
 *   says the endpoint is busy, not broken, so breakers and outlier detection do not count it,
 *   while the balancer's load does (so traffic steers away from it).
 * - `failure`: a failure that must not be resent; it counts against the endpoint.
 * - `ignorable`: says nothing about the endpoint (a 404, a caller's abort).
 */
import { AttemptTimeoutError, TotalTimeoutError } from "./errors.js";
import type { HeaderMap, MeshRequest, MeshResponse } from "./types.js";

export type Outcome = "success" | "retryable" | "overloaded" | "failure" | "ignorable";

/**
 * The response header a `weft/server` sets on a request it shed (503, with `Retry-After`) before
 * any handler ran; its value says why (`concurrency`, `draining`). The default classifier reads
 * it as `overloaded`.
 */
export const SHED_HEADER = "x-weft-shed";

/**
 * Decides an outcome from (request, response | error). It must be **pure and cheap**: it reads
 * only its arguments, keeps no state and does not read the body. Each layer that needs a verdict
 * asks it, so one attempt is classified up to four times (breaker, balance — which hands it to
 * outlier detection —, retry, the concurrency limit) and the call once more (observe); the same
 * inputs must give the same answer every time. Asking again is cheaper here than carrying the
 * verdict up through a shared mutable slot (~10 ns a call of the default classifier), and keeps
 * each layer usable alone.
 */
export type Classifier = (req: MeshRequest, res: MeshResponse | undefined, error: unknown) => Outcome;

/** RFC 9110 §9.2.2 idempotent methods. */
const IDEMPOTENT_METHODS = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);

/** True for idempotent methods and for requests carrying an `Idempotency-Key` header. */
export function isIdempotentRequest(method: string, headers: HeaderMap): boolean {
  return IDEMPOTENT_METHODS.has(method) || headers["idempotency-key"] !== undefined;
}

/**
 * Error codes that mean the request never left this process: the connection was refused or could
 * not be made, the name did not resolve, the pool was closed. Resending is safe for any method
 * (Finagle's requeue). A reset *after* a connection was made is not in this list: the server may
 * have read the request.
 */
const NOT_SENT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_DESTROYED",
  "UND_ERR_CLOSED",
  "ERR_SOCKET_CONNECTION_TIMEOUT",
  // An endpoint's breaker refused the attempt before anything was sent.
  "WEFT_ERR_BREAKER_OPEN",
  // The TLS handshake failed (identity, certificate): no byte of the request was written. The
  // balance layer never resends the call to that endpoint.
  "WEFT_ERR_IDENTITY",
  "WEFT_ERR_TLS",
  // An HTTP/2 stream above the server's GOAWAY last-stream-id, or reset with REFUSED_STREAM: the
  // server says it processed none of it (RFC 9113 §8.7).
  "WEFT_ERR_REFUSED_STREAM",
]);

/** True when `error` is a stream the server refused before processing it (`WEFT_ERR_REFUSED_STREAM`). */
export function isRefusedStream(error: unknown): boolean {
  return (error as { code?: unknown } | null | undefined)?.code === "WEFT_ERR_REFUSED_STREAM";
}

/** True when `error` (or an error in its `cause` chain) shows the request was never written. */
export function neverReachedServer(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && typeof current === "object" && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && NOT_SENT_CODES.has(code)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * The default rules:
 * - a failure before the request was written is retryable for any method;
 * - 502/503/504, an attempt timeout and any other transport error are retryable only for
 *   idempotent requests, failures otherwise;
 * - 429 is retryable (its `Retry-After` is honoured by the retry layer);
 * - a 503 marked shed (`x-weft-shed`), or an HTTP/2 stream the server refused unprocessed
 *   (`WEFT_ERR_REFUSED_STREAM`: a GOAWAY, REFUSED_STREAM), is overloaded: resent elsewhere for any
 *   method, not held against the endpoint;
 * - other 5xx are failures; other 4xx are ignorable (they never count against an endpoint);
 * - a caller's abort is ignorable; running out of the total deadline is a failure.
 */
export const defaultClassifier: Classifier = (req, res, error) => {
  if (res !== undefined) {
    const status = res.status;
    if (status < 400) return "success";
    if (status === 429) return "retryable";
    if (status === 503 && res.headers[SHED_HEADER] !== undefined) return "overloaded";
    if (status === 502 || status === 503 || status === 504) return req.idempotent ? "retryable" : "failure";
    if (status >= 500) return "failure";
    return "ignorable";
  }
  if (error instanceof TotalTimeoutError) return "failure";
  if (error instanceof AttemptTimeoutError) return req.idempotent ? "retryable" : "failure";
  // Aborted from above for a reason that is not a timeout: the caller's abort, a hedge that lost.
  if (req.cancel !== null && req.cancel.aborted && req.cancel.reason === error) return "ignorable";
  // A stream the server refused before processing it (a GOAWAY, REFUSED_STREAM): never sent, and
  // the endpoint said it is going away or busy — resent elsewhere, not held against it.
  if (isRefusedStream(error)) return "overloaded";
  if (neverReachedServer(error)) return "retryable";
  return req.idempotent ? "retryable" : "failure";
};

/** True for the outcomes that count against an endpoint's health (breakers, outlier detection). */
export function isFailure(outcome: Outcome): boolean {
  return outcome === "failure" || outcome === "retryable";
}

/** True for the outcomes the retry layer may send again. */
export function isRetryable(outcome: Outcome): boolean {
  return outcome === "retryable" || outcome === "overloaded";
}

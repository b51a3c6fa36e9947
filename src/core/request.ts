/**
 * Building and deriving requests. Requests are immutable values; `deriveRequest` makes a copy
 * with some fields changed (a shallow spread: a few dozen nanoseconds).
 */
import { CallState, type MeshRequest } from "./types.js";

export function deriveRequest(req: MeshRequest, changes: Partial<MeshRequest>): MeshRequest {
  return { ...req, ...changes };
}

/** A copy of `req` with one attribute set. */
export function withAttr(req: MeshRequest, key: string | symbol, value: unknown): MeshRequest {
  return { ...req, attrs: { ...req.attrs, [key]: value } };
}

/** A copy of `req` with headers merged in (lower-case names). */
export function withHeaders(req: MeshRequest, headers: Readonly<Record<string, string>>): MeshRequest {
  return { ...req, headers: { ...req.headers, ...headers } };
}

/** True when the body can be sent again (no body, a string or bytes). */
export function isReplayable(req: MeshRequest): boolean {
  const body = req.body;
  return body === null || typeof body === "string" || body instanceof Uint8Array;
}

const NO_HEADERS = Object.freeze({});

/**
 * A complete request from the fields that matter, the rest at their "top of the stack" values
 * (no body, no deadline, first attempt, no endpoint yet). For requests made outside
 * `client.request()`: health checks, tests, custom layers.
 */
export function newRequest(fields: Partial<MeshRequest> & Pick<MeshRequest, "path">): MeshRequest {
  return {
    method: "GET",
    headers: NO_HEADERS,
    body: null,
    idempotent: true,
    cancel: null,
    deadline: Infinity,
    attempt: 0,
    endpoint: null,
    service: "",
    attrs: NO_HEADERS,
    timeout: null,
    call: new CallState(),
    ...fields,
  };
}

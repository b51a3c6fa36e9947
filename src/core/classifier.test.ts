import { describe, expect, it } from "vitest";
import { Cancellation } from "./cancel.js";
import {
  defaultClassifier,
  isFailure,
  isIdempotentRequest,
  isRetryable,
  neverReachedServer,
  SHED_HEADER,
} from "./classifier.js";
import { AttemptTimeoutError, RefusedStreamError, TotalTimeoutError } from "./errors.js";
import { BufferedResponse } from "./response.js";
import type { MeshRequest } from "./types.js";

const get = { method: "GET", idempotent: true, cancel: null } as unknown as MeshRequest;
const post = { method: "POST", idempotent: false, cancel: null } as unknown as MeshRequest;
const status = (s: number) => new BufferedResponse(s);
const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
const reset = Object.assign(new Error("other side closed"), { code: "UND_ERR_SOCKET" });

describe("defaultClassifier", () => {
  it("calls 2xx and 3xx success", () => {
    expect(defaultClassifier(get, status(200), undefined)).toBe("success");
    expect(defaultClassifier(post, status(302), undefined)).toBe("success");
  });

  it("retries 502/503/504 only for idempotent requests", () => {
    for (const s of [502, 503, 504]) {
      expect(defaultClassifier(get, status(s), undefined)).toBe("retryable");
      expect(defaultClassifier(post, status(s), undefined)).toBe("failure");
    }
  });

  it("calls a 503 marked shed overloaded for any method: resent elsewhere, blamed on no endpoint", () => {
    const shed = new BufferedResponse(503, "", { [SHED_HEADER]: "concurrency", "retry-after": "1" });
    expect(defaultClassifier(get, shed, undefined)).toBe("overloaded");
    expect(defaultClassifier(post, shed, undefined)).toBe("overloaded");
    expect(isRetryable("overloaded")).toBe(true);
    expect(isFailure("overloaded")).toBe(false);
    // The marker means nothing on another status.
    expect(defaultClassifier(post, new BufferedResponse(500, "", { [SHED_HEADER]: "concurrency" }), undefined)).toBe(
      "failure",
    );
  });

  it("retries 429 for any method", () => {
    expect(defaultClassifier(post, status(429), undefined)).toBe("retryable");
  });

  it("counts other 5xx as failures and other 4xx as ignorable", () => {
    expect(defaultClassifier(get, status(500), undefined)).toBe("failure");
    expect(defaultClassifier(get, status(404), undefined)).toBe("ignorable");
    expect(defaultClassifier(post, status(400), undefined)).toBe("ignorable");
  });

  it("retries a request that never reached a server, even a POST", () => {
    expect(defaultClassifier(post, undefined, refused)).toBe("retryable");
    expect(defaultClassifier(post, undefined, new TypeError("fetch failed", { cause: refused }))).toBe("retryable");
  });

  it("does not retry a POST after a reset that may have reached the server", () => {
    expect(defaultClassifier(post, undefined, reset)).toBe("failure");
    expect(defaultClassifier(get, undefined, reset)).toBe("retryable");
  });

  it("treats attempt timeouts like resets and total timeouts as final failures", () => {
    expect(defaultClassifier(get, undefined, new AttemptTimeoutError(10))).toBe("retryable");
    expect(defaultClassifier(post, undefined, new AttemptTimeoutError(10))).toBe("failure");
    expect(defaultClassifier(get, undefined, new TotalTimeoutError(10))).toBe("failure");
  });

  it("ignores a caller's abort", () => {
    const cancel = new Cancellation();
    const reason = new DOMException("aborted", "AbortError");
    cancel.abort(reason);
    expect(defaultClassifier({ ...get, cancel }, undefined, reason)).toBe("ignorable");
  });
});

describe("isIdempotentRequest", () => {
  it("knows the RFC 9110 idempotent methods and the Idempotency-Key header", () => {
    for (const m of ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]) expect(isIdempotentRequest(m, {})).toBe(true);
    expect(isIdempotentRequest("POST", {})).toBe(false);
    expect(isIdempotentRequest("PATCH", {})).toBe(false);
    expect(isIdempotentRequest("POST", { "idempotency-key": "k1" })).toBe(true);
  });
});

describe("neverReachedServer", () => {
  it("looks through the cause chain", () => {
    expect(neverReachedServer(new Error("x", { cause: new Error("y", { cause: refused }) }))).toBe(true);
    expect(neverReachedServer(reset)).toBe(false);
    expect(neverReachedServer("nope")).toBe(false);
  });

  it("counts an HTTP/2 stream the server refused (GOAWAY, REFUSED_STREAM) as never sent and overloaded: a POST is resent, the endpoint not blamed", () => {
    const goaway = new RefusedStreamError("http://a:1", 7, 5);
    expect(neverReachedServer(goaway)).toBe(true);
    expect(defaultClassifier(post, undefined, goaway)).toBe("overloaded");
    expect(defaultClassifier(post, undefined, new RefusedStreamError("http://a:1", 7, undefined))).toBe("overloaded");
  });
});

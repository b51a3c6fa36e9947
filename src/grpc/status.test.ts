import { describe, expect, it } from "vitest";
import { defaultClassifier } from "../core/classifier.js";
import {
  AttemptsExhaustedError,
  BreakerOpenError,
  ConcurrencyLimitError,
  NoEndpointsError,
  TotalTimeoutError,
} from "../core/errors.js";
import { newRequest } from "../core/request.js";
import { BufferedResponse } from "../core/response.js";
import {
  Code,
  NEVER_RETRY_AFTER,
  codeOfError,
  codeOfHttpStatus,
  httpStatusOf,
  retryAfterOfPushback,
  unsentCode,
} from "./status.js";

const REFUSED = "No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1. Resolution note: ";

describe("a gRPC status as the classifier reads it", () => {
  it("maps the codes as google.rpc.Code does, and back", () => {
    const table: [number, number][] = [
      [Code.OK, 200],
      [Code.CANCELLED, 499],
      [Code.UNKNOWN, 500],
      [Code.INVALID_ARGUMENT, 400],
      [Code.DEADLINE_EXCEEDED, 504],
      [Code.NOT_FOUND, 404],
      [Code.PERMISSION_DENIED, 403],
      [Code.RESOURCE_EXHAUSTED, 429],
      [Code.UNIMPLEMENTED, 501],
      [Code.INTERNAL, 500],
      [Code.UNAVAILABLE, 503],
      [Code.UNAUTHENTICATED, 401],
    ];
    for (const [code, http] of table) expect(httpStatusOf(code, "")).toBe(http);
    for (const [code, http] of table) if (http !== 500) expect(codeOfHttpStatus(http)).toBe(code);
    expect(httpStatusOf(9 /* FAILED_PRECONDITION */, "")).toBe(400);
    expect(httpStatusOf(10 /* ABORTED */, "")).toBe(409);
  });

  it("gives UNAVAILABLE to retry only when idempotent, RESOURCE_EXHAUSTED always, NOT_FOUND never", () => {
    const outcome = (code: number, idempotent: boolean): string =>
      defaultClassifier(
        newRequest({ path: "/p.S/M", idempotent }),
        new BufferedResponse(httpStatusOf(code, "")),
        undefined,
      );
    expect(outcome(Code.UNAVAILABLE, true)).toBe("retryable");
    expect(outcome(Code.UNAVAILABLE, false)).toBe("failure");
    expect(outcome(Code.RESOURCE_EXHAUSTED, false)).toBe("retryable");
    expect(outcome(Code.NOT_FOUND, true)).toBe("ignorable");
    expect(outcome(Code.INTERNAL, true)).toBe("failure");
  });

  it("does not resend a message over the size limit (the client's own RESOURCE_EXHAUSTED)", () => {
    expect(httpStatusOf(Code.RESOURCE_EXHAUSTED, "Received message larger than max (5000 vs. 4194304)")).toBe(413);
  });
});

describe("pushback", () => {
  it("is a Retry-After in seconds with the milliseconds kept; negative or unreadable means never", () => {
    expect(retryAfterOfPushback(undefined)).toBeUndefined();
    expect(retryAfterOfPushback("0")).toBe("0");
    expect(retryAfterOfPushback("1000")).toBe("1");
    expect(retryAfterOfPushback("1500")).toBe("1.5");
    expect(retryAfterOfPushback("7")).toBe("0.007");
    expect(retryAfterOfPushback("29999")).toBe("29.999");
    expect(retryAfterOfPushback("-1")).toBe(NEVER_RETRY_AFTER);
    expect(retryAfterOfPushback("soon")).toBe(NEVER_RETRY_AFTER);
  });
});

describe("never sent", () => {
  it("is an UNAVAILABLE before any connection, with a socket error the classifier lists", () => {
    expect(unsentCode(Code.UNAVAILABLE, REFUSED)).toBe("ECONNREFUSED");
    expect(unsentCode(Code.UNAVAILABLE, `round_robin: ${REFUSED}`)).toBe("ECONNREFUSED");
    expect(
      unsentCode(Code.UNAVAILABLE, "Name resolution failed for target dns:x.invalid:1: getaddrinfo ENOTFOUND"),
    ).toBe("ENOTFOUND");
  });

  it("is not a dropped connection, a server's UNAVAILABLE, or a failure with no known socket error", () => {
    expect(unsentCode(Code.UNAVAILABLE, "Connection dropped")).toBeNull();
    expect(unsentCode(Code.UNAVAILABLE, "connect ECONNREFUSED said the handler")).toBeNull();
    expect(
      unsentCode(Code.UNAVAILABLE, "No connection established. Last error: Error: certificate has expired"),
    ).toBeNull();
    expect(unsentCode(Code.INTERNAL, REFUSED)).toBeNull();
  });
});

describe("weft's own errors", () => {
  it("reach the caller as the gRPC code grpc-js users expect", () => {
    expect(codeOfError(new TotalTimeoutError(100))).toBe(Code.DEADLINE_EXCEEDED);
    expect(codeOfError(new NoEndpointsError("s"))).toBe(Code.UNAVAILABLE);
    expect(codeOfError(new BreakerOpenError("s"))).toBe(Code.UNAVAILABLE);
    expect(codeOfError(new ConcurrencyLimitError("s", "full"))).toBe(Code.RESOURCE_EXHAUSTED);
    const unsent = { code: "ECONNREFUSED", grpcStatus: { code: Code.UNAVAILABLE } };
    expect(codeOfError(new AttemptsExhaustedError("s", { cause: unsent, attempts: 3 }))).toBe(Code.UNAVAILABLE);
    expect(codeOfError(new TypeError("a middleware's bug"))).toBe(Code.UNKNOWN);
    expect(codeOfError(Object.assign(new Error("refused"), { code: "ECONNREFUSED" }))).toBe(Code.UNAVAILABLE);
  });
});

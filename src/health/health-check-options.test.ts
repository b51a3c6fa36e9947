import { describe, expect, it } from "vitest";
import { normalizeHealthCheckOptions } from "./health-check-options.js";

describe("normalizeHealthCheckOptions", () => {
  it("is off unless a path is given", () => {
    expect(normalizeHealthCheckOptions(undefined)).toBe(false);
    expect(normalizeHealthCheckOptions(false)).toBe(false);
  });

  it("fills in the defaults: every 10 s, 1 s timeout, 2 up, 3 down, GET, any 2xx", () => {
    const config = normalizeHealthCheckOptions({ path: "/healthz" });
    expect(config).toEqual({
      path: "/healthz",
      intervalMs: 10_000,
      timeoutMs: 1000,
      healthyThreshold: 2,
      unhealthyThreshold: 3,
      method: "GET",
      expectedStatus: null,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it("takes one expected status or a list, and a method in any case", () => {
    expect(normalizeHealthCheckOptions({ path: "/", expectedStatus: 204, method: "head" })).toMatchObject({
      expectedStatus: [204],
      method: "HEAD",
    });
    const list = [200, 503];
    const config = normalizeHealthCheckOptions({ path: "/", expectedStatus: list });
    expect(config).toMatchObject({ expectedStatus: [200, 503] });
    list.push(404);
    expect(config && config.expectedStatus).toEqual([200, 503]); // a copy, not the caller's array
  });

  it("names the option, the value and what is allowed", () => {
    const cases: [unknown, string][] = [
      [{}, 'invalid option healthCheck.path: got undefined; expected a path starting with "/", e.g. "/healthz"'],
      [{ path: "healthz" }, 'healthCheck.path: got "healthz"'],
      [
        { path: "/", intervalMs: 0 },
        "invalid option healthCheck.intervalMs: got 0; expected a positive number of milliseconds",
      ],
      [
        { path: "/", timeoutMs: 20_000 },
        "invalid option healthCheck.timeoutMs: got 20000; expected a positive number of milliseconds, at most healthCheck.intervalMs (10000)",
      ],
      [
        { path: "/", healthyThreshold: 0 },
        "healthCheck.healthyThreshold: got 0; expected an integer ≥ 1 (passed checks in a row)",
      ],
      [{ path: "/", unhealthyThreshold: 1.5 }, "healthCheck.unhealthyThreshold: got 1.5"],
      [{ path: "/", method: "GE T" }, 'healthCheck.method: got "GE T"; expected an HTTP method'],
      [
        { path: "/", expectedStatus: 700 },
        "healthCheck.expectedStatus: got 700; expected an HTTP status (100–599) or a non-empty list of them",
      ],
      [{ path: "/", expectedStatus: [] }, "healthCheck.expectedStatus: got []"],
      [{ path: "/", interval: 5000 }, "unknown option healthCheck.interval (did you mean healthCheck.intervalMs?)"],
      ["/healthz", 'invalid option healthCheck: got "/healthz"; expected { path, intervalMs?'],
    ];
    for (const [value, message] of cases) {
      expect(() => normalizeHealthCheckOptions(value), message).toThrow(message);
    }
  });
});

import { describe, expect, it } from "vitest";
import { p2cEwma, roundRobin } from "../balance/index.js";
import { ErrorCodes, isWeftError, type InvalidOptionsError } from "../core/errors.js";
import { staticDiscovery } from "../discovery/static.js";
import { mockService } from "../testing/mock-service.js";
import { createClient, createMesh } from "./mesh.js";

const discovery = staticDiscovery(["http://127.0.0.1:1"]);
const transport = mockService(() => ({ status: 200 }));

function invalid(fn: () => unknown): InvalidOptionsError {
  try {
    fn();
  } catch (error) {
    expect(isWeftError(error)).toBe(true);
    expect((error as InvalidOptionsError).code).toBe(ErrorCodes.INVALID_OPTIONS);
    return error as InvalidOptionsError;
  }
  throw new Error("expected an InvalidOptionsError");
}

describe("createClient options", () => {
  it("names the option, the value and what is allowed", () => {
    const error = invalid(() => createClient({ service: "s", discovery, transport, timeout: { attemptMs: -5 } }));
    expect(error.option).toBe("timeout.attemptMs");
    expect(error.message).toBe(
      "invalid option timeout.attemptMs: got -5; expected a positive number of milliseconds or false (off)",
    );
  });

  it("rejects an unknown key and suggests the nearest one", () => {
    const error = invalid(() => createClient({ service: "s", discovery, transport, timout: { totalMs: 10 } } as never));
    expect(error.option).toBe("timout");
    expect(error.message).toMatch(/unknown option timout \(did you mean timeout\?\); allowed: service, discovery/);
  });

  it("rejects unknown nested keys", () => {
    const error = invalid(() =>
      createClient({ service: "s", discovery, transport, timeout: { totalMS: 10 } as never }),
    );
    expect(error.message).toMatch(/unknown option timeout.totalMS \(did you mean timeout.totalMs\?\)/);
  });

  it("checks routes at construction, naming the path of the bad value and the client option a route overrides", () => {
    const badWeight = invalid(() =>
      createClient({ service: "s", discovery, transport, routes: [{ backends: [{ weight: -1 }] }] }),
    );
    expect(badWeight.option).toBe("routes[0].backends[0].weight");
    expect(badWeight.message).toMatch(
      /invalid option routes\[0\]\.backends\[0\]\.weight: got -1; expected a number from 0/,
    );
    // A route's retry is checked by the client's own rule, with the route's path.
    const badRetry = invalid(() =>
      createClient({ service: "s", discovery, transport, routes: [{}, { retry: { maxAttempts: 0 } }] }),
    );
    expect(badRetry.message).toBe(
      "invalid option routes[1].retry.maxAttempts: got 0; expected an integer from 1 (no retries) to 100",
    );
    // The merge with the client's own options is checked too: a route's attempt bound above the client's total.
    const merged = invalid(() =>
      createClient({
        service: "s",
        discovery,
        transport,
        timeout: { totalMs: 100 },
        routes: [{ timeout: { attemptMs: 500 } }],
      }),
    );
    expect(merged.message).toBe(
      "invalid option routes[0].timeout.attemptMs: got 500; expected at most routes[0].timeout.totalMs (100)",
    );
  });

  it("requires a service name and a discovery source", () => {
    expect(invalid(() => createClient({ discovery } as never)).option).toBe("service");
    expect(invalid(() => createClient({ service: "s" } as never)).message).toMatch(
      /invalid option discovery: got undefined; expected a discovery source/,
    );
  });

  it("checks the type of every policy", () => {
    expect(invalid(() => createClient({ service: "s", discovery, balancer: "p2c" } as never)).option).toBe("balancer");
    expect(invalid(() => createClient({ service: "s", discovery, use: [42] } as never)).option).toBe("use[0]");
    expect(
      invalid(() => createClient({ service: "s", discovery, timeout: { attemptMs: 500, totalMs: 100 } })).message,
    ).toMatch(/at most timeout.totalMs \(100\)/);
    expect(invalid(() => createClient({ service: "s", discovery, tracing: "yes" } as never)).option).toBe("tracing");
    expect(invalid(() => createClient({ service: "s", discovery, retry: { maxAttempts: 0 } })).option).toBe(
      "retry.maxAttempts",
    );
    expect(invalid(() => createClient({ service: "s", discovery, retry: { budget: { ratio: -1 } } })).option).toBe(
      "retry.budget.ratio",
    );
    expect(invalid(() => createClient({ service: "s", discovery, retry: { backof: {} } as never })).message).toMatch(
      /did you mean retry.backoff/,
    );
    expect(invalid(() => createClient({ service: "s", discovery, hedge: { maxHedges: 2 } })).message).toMatch(
      /expected delayMs or percentile/,
    );
    expect(invalid(() => createClient({ service: "s", discovery, hedge: { percentile: 100 } })).option).toBe(
      "hedge.percentile",
    );
    expect(invalid(() => createClient({ service: "s", discovery, timeout: { header: "bad header" } })).option).toBe(
      "timeout.header",
    );
  });

  it("rejects bad endpoint URLs when discovery is built", () => {
    expect(invalid(() => staticDiscovery([])).message).toMatch(/non-empty array/);
    expect(invalid(() => staticDiscovery(["127.0.0.1:8080"])).message).toMatch(
      /"127.0.0.1:8080" (is not an absolute URL|has protocol)/,
    );
    expect(invalid(() => staticDiscovery(["ftp://x"])).message).toMatch(/allowed: http:, https:/);
  });

  it("never writes into the caller's options", async () => {
    const options = Object.freeze({ service: "s", discovery, transport, timeout: Object.freeze({ totalMs: 1000 }) });
    const client = createClient(options);
    expect(client.config.totalMs).toBe(1000);
    expect(Object.isFrozen(client.config)).toBe(true);
    await client.close();
  });
});

describe("createMesh", () => {
  it("gives clients the mesh defaults, merged under their own options", async () => {
    const mesh = createMesh({ defaults: { transport, balancer: roundRobin(), timeout: { totalMs: 500 } } });
    const a = mesh.client("a", { discovery, timeout: { attemptMs: 100 } });
    const b = mesh.client("b", { discovery, balancer: p2cEwma() });
    expect(a.config.totalMs).toBe(500);
    expect(a.config.attemptMs).toBe(100);
    expect(a.config.balancer.name).toBe("roundRobin");
    expect(b.config.balancer.name).toBe("p2cEwma");
    expect(mesh.snapshot().clients.map((c) => c.service)).toEqual(["a", "b"]);
    await mesh.close();
    expect(a.closed && b.closed).toBe(true);
  });

  it("validates defaults at construction and refuses a duplicate service", async () => {
    expect(invalid(() => createMesh({ defaults: { timeout: { totalMs: 0 } } })).option).toBe(
      "defaults.timeout.totalMs",
    );
    const mesh = createMesh({ defaults: { transport } });
    mesh.client("a", { discovery });
    expect(invalid(() => mesh.client("a", { discovery })).message).toMatch(/already exists/);
    await mesh.close();
  });
});

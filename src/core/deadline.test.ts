import { describe, expect, it } from "vitest";
import { createClient } from "../client/mesh.js";
import { staticDiscovery } from "../discovery/static.js";
import { fakeClock } from "../testing/fake-clock.js";
import { mockService } from "../testing/mock-service.js";
import { ErrorCodes, type WeftError } from "./errors.js";
import type { MeshRequest, MeshResponse } from "./types.js";

/** A service that answers only when told to, and records how each attempt was cancelled. */
function hangingService() {
  const seen: MeshRequest[] = [];
  const factory = mockService(
    (req) =>
      new Promise<MeshResponse>((_resolve, reject) => {
        seen.push(req);
        req.cancel?.addEventListener("abort", () => reject(req.cancel?.reason));
      }),
  );
  return { seen, factory };
}

describe("deadlines", () => {
  it("ends an attempt at attemptMs with WEFT_ERR_ATTEMPT_TIMEOUT and cancels it", async () => {
    const clock = fakeClock();
    const { seen, factory } = hangingService();
    const client = createClient({
      service: "s",
      discovery: staticDiscovery(["http://127.0.0.1:1"]),
      transport: factory,
      clock,
      retry: false,
      timeout: { attemptMs: 100, totalMs: 1000 },
    });
    const call = client.request({ path: "/" }).catch((e: WeftError) => e);
    await clock.advanceAsync(100);
    const error = (await call) as WeftError;
    expect(error.code).toBe(ErrorCodes.ATTEMPT_TIMEOUT);
    expect(error.attempts).toBe(1);
    expect(seen[0]?.cancel?.aborted).toBe(true);
    expect(client.snapshot().counters.timeouts).toBe(1);
    await client.close();
  });

  it("ends the call at totalMs with WEFT_ERR_TOTAL_TIMEOUT when it comes before the attempt timeout", async () => {
    const clock = fakeClock();
    const { factory } = hangingService();
    const client = createClient({
      service: "s",
      discovery: staticDiscovery(["http://127.0.0.1:1"]),
      transport: factory,
      clock,
      retry: false,
      timeout: { attemptMs: 500, totalMs: 1000 },
    });
    const call = client.request({ path: "/", timeout: { totalMs: 200 } }).catch((e: WeftError) => e);
    await clock.advanceAsync(199);
    let settled = false;
    void call.then(() => (settled = true));
    await clock.advanceAsync(0);
    expect(settled).toBe(false);
    await clock.advanceAsync(1);
    expect(((await call) as WeftError).code).toBe(ErrorCodes.TOTAL_TIMEOUT);
    await client.close();
  });

  it("honours per-call timeouts over the client's", async () => {
    const clock = fakeClock();
    const { factory } = hangingService();
    const client = createClient({
      service: "s",
      discovery: staticDiscovery(["http://127.0.0.1:1"]),
      transport: factory,
      clock,
      retry: false,
      timeout: { totalMs: 10_000 },
    });
    const call = client.request({ path: "/", timeout: { totalMs: 50 } }).catch((e: WeftError) => e);
    await clock.advanceAsync(50);
    expect(((await call) as WeftError).code).toBe(ErrorCodes.TOTAL_TIMEOUT);
    await client.close();
  });

  it("settles at the deadline even when the service ignores cancellation", async () => {
    const clock = fakeClock();
    const client = createClient({
      service: "s",
      discovery: staticDiscovery(["http://127.0.0.1:1"]),
      transport: mockService(() => new Promise<MeshResponse>(() => {})),
      clock,
      retry: false,
      timeout: { totalMs: 30 },
    });
    const call = client.request({ path: "/" }).catch((e: WeftError) => e);
    await clock.advanceAsync(30);
    expect(((await call) as WeftError).code).toBe(ErrorCodes.TOTAL_TIMEOUT);
    await client.close();
  });

  it("passes the caller's abort reason through unchanged", async () => {
    const { factory } = hangingService();
    const client = createClient({
      service: "s",
      discovery: staticDiscovery(["http://127.0.0.1:1"]),
      transport: factory,
      retry: false,
    });
    const controller = new AbortController();
    const reason = new Error("user navigated away");
    const call = client.request({ path: "/", signal: controller.signal }).catch((e: unknown) => e);
    controller.abort(reason);
    expect(await call).toBe(reason);
    expect(client.snapshot().counters.ignorable).toBe(1);
    await client.close();
  });
});

/**
 * The retry layer with the whole stack over an in-memory service and a fake clock: which
 * outcomes are resent, when, where, and what the caller gets when retries end.
 */
import { describe, expect, it } from "vitest";
import { createClient, type ClientOptions } from "../client/index.js";
import { seededRandom } from "../core/clock.js";
import { ErrorCodes, RefusedStreamError, type WeftError } from "../core/errors.js";
import type { MeshRequest, MeshResponse } from "../core/types.js";
import type { Endpoint } from "../core/endpoint.js";
import { staticDiscovery } from "../discovery/static.js";
import { fakeClock } from "../testing/fake-clock.js";
import { mockService, type MockReply } from "../testing/mock-service.js";

const URLS = ["http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"];
const refused = () => Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });

function setup(
  handler: (req: MeshRequest, n: number) => MockReply | MeshResponse | Promise<MockReply | MeshResponse>,
  options: Partial<ClientOptions> = {},
) {
  const clock = fakeClock();
  const seen: MeshRequest[] = [];
  const client = createClient({
    service: "svc",
    discovery: staticDiscovery(URLS),
    clock,
    random: seededRandom(3),
    transport: mockService((req) => {
      seen.push(req);
      return handler(req, seen.length);
    }),
    ...options,
  });
  return { clock, seen, client };
}

describe("retry", () => {
  it("resends a GET that got a 503 and returns the success", async () => {
    const { client, seen, clock } = setup((_req, n) => ({ status: n === 1 ? 503 : 200, body: `#${n}` }));
    const call = client.request({ path: "/" });
    await clock.advanceAsync(1000);
    const res = await call;
    expect(res.status).toBe(200);
    expect(seen.map((r) => r.attempt)).toEqual([0, 1]);
    expect(seen[1]?.endpoint?.url).not.toBe(seen[0]?.endpoint?.url);
  });

  it("does not resend a POST that got a 503: the server may have acted on it", async () => {
    const { client, seen } = setup(() => ({ status: 503 }));
    const res = await client.request({ method: "POST", path: "/orders", body: "{}" });
    expect(res.status).toBe(503);
    expect(seen).toHaveLength(1);
  });

  it("resends a POST with an Idempotency-Key, or marked idempotent", async () => {
    const { client, seen, clock } = setup((_req, n) => ({ status: n % 2 === 1 ? 503 : 201 }));
    const a = client.request({ method: "POST", path: "/", body: "x", headers: { "idempotency-key": "k1" } });
    await clock.advanceAsync(1000);
    expect((await a).status).toBe(201);
    const b = client.request({ method: "POST", path: "/", body: "x", idempotent: true });
    await clock.advanceAsync(1000);
    expect((await b).status).toBe(201);
    expect(seen).toHaveLength(4);
  });

  it("resends a POST that never reached a server", async () => {
    const { client, seen, clock } = setup((req) => {
      if (req.attempt === 0) throw refused();
      return { status: 201 };
    });
    const call = client.request({ method: "POST", path: "/", body: "x" });
    await clock.advanceAsync(1000);
    expect((await call).status).toBe(201);
    expect(seen.map((r) => r.body)).toEqual(["x", "x"]);
  });

  it("requeues a stream the server refused unprocessed without spending an attempt, and does not blame the endpoint", async () => {
    const refusedStream = (): Error => new RefusedStreamError("http://127.0.0.1:1", 61, 59);
    // Six refusals (a server shedding streams on shutdown), then an answer: maxAttempts 3 is not
    // used up by them.
    const { client, seen, clock } = setup(
      (_req, n) => {
        if (n <= 6) throw refusedStream();
        return { status: 201 };
      },
      { retry: { maxAttempts: 3 }, breaker: { volumeThreshold: 1, errorThresholdPercentage: 1 } },
    );
    const call = client.request({ method: "POST", path: "/", body: "x" });
    await clock.advanceAsync(1000);
    expect((await call).status).toBe(201);
    expect(seen).toHaveLength(7);
    // Refused streams are "overloaded": no breaker counted them.
    expect(client.snapshot().endpoints.every((e) => e.breaker === "closed")).toBe(true);

    // Bounded on their own: past 10 requeues, refusals count as attempts again.
    const always = setup(
      () => {
        throw refusedStream();
      },
      { retry: { maxAttempts: 3 } },
    );
    const failing = always.client.request({ path: "/" });
    const outcome = failing.catch((e: WeftError) => e);
    await always.clock.advanceAsync(5000);
    expect(await outcome).toMatchObject({ code: ErrorCodes.ATTEMPTS });
    expect(always.seen).toHaveLength(10 + 3);
  });

  it("never resends a stream body", async () => {
    const { client, seen } = setup(() => {
      throw refused();
    });
    const stream = new ReadableStream<Uint8Array>({ start: (c) => c.close() });
    const error = (await client.request({ method: "PUT", path: "/", body: stream }).catch((e: unknown) => e)) as {
      code?: string;
    };
    expect(error.code).toBe("ECONNREFUSED");
    expect(seen).toHaveLength(1);
  });

  it("returns the last response when attempts run out (a 503 stays a response)", async () => {
    const { client, seen, clock } = setup(() => ({ status: 503, body: "busy" }));
    const call = client.request({ path: "/" });
    await clock.advanceAsync(5000);
    const res = await call;
    expect(res.status).toBe(503);
    expect(await res.text()).toBe("busy");
    expect(seen).toHaveLength(3);
    expect(new Set(seen.map((r) => r.endpoint?.url)).size).toBe(3);
  });

  it("throws WEFT_ERR_ATTEMPTS with the last error as cause when every attempt failed with an error", async () => {
    const { client, clock } = setup(() => {
      throw refused();
    });
    const call = client.request({ path: "/" }).catch((e: WeftError) => e);
    await clock.advanceAsync(5000);
    const error = (await call) as WeftError;
    expect(error.code).toBe(ErrorCodes.ATTEMPTS);
    expect(error.attempts).toBe(3);
    expect((error.cause as { code: string }).code).toBe("ECONNREFUSED");
  });

  it("waits with full-jitter backoff between attempts, bounded by maxMs", async () => {
    const { client, seen, clock } = setup(() => ({ status: 503 }), {
      retry: { maxAttempts: 4, backoff: { baseMs: 100, maxMs: 150 } },
    });
    const starts: number[] = [];
    client.events.onAttemptStart(() => starts.push(clock.now()));
    const call = client.request({ path: "/" });
    await clock.advanceAsync(1000);
    await call;
    expect(seen).toHaveLength(4);
    const gaps = starts.slice(1).map((t, i) => t - (starts[i] as number));
    expect(gaps[0]).toBeLessThanOrEqual(100);
    for (const gap of gaps) expect(gap).toBeLessThanOrEqual(150);
  });

  it("resends a shed POST to another endpoint after the backoff, not the shedding server's Retry-After", async () => {
    const shed = { status: 503, headers: { "x-weft-shed": "concurrency", "retry-after": "30" }, body: "" };
    const { client, seen, clock } = setup(
      (req) => (req.endpoint?.url === URLS[0] ? shed : { status: 201, body: "made" }),
      {
        // Picks the first URL whenever it may, so the first attempt goes to the shedding one.
        balancer: {
          name: "first",
          create: () => ({ pick: (ready: readonly Endpoint[]) => ready.find((e) => e.url === URLS[0]) ?? ready[0]! }),
        },
      },
    );
    const call = client.request({ method: "POST", path: "/orders", body: "{}" });
    await clock.advanceAsync(1000);
    const res = await call;
    expect(res.status).toBe(201);
    expect(seen.map((r) => r.endpoint?.url)).toEqual([URLS[0], URLS[1]]);
    const snapshot = client.snapshot();
    const shedding = snapshot.endpoints.find((e) => e.url === URLS[0])!;
    // Busy, not broken: no failure counted, the breaker stays closed, nothing ejected.
    expect(shedding.failures).toBe(0);
    expect(shedding.breaker).toBe("closed");
    expect(shedding.state).toBe("healthy");
    await client.close();
  });

  it("never trips a breaker or ejects an endpoint for shed answers, however many", async () => {
    const shed = { status: 503, headers: { "x-weft-shed": "concurrency" }, body: "" };
    const { client, clock } = setup(() => shed, { retry: false });
    for (let i = 0; i < 40; i++) {
      const res = await client.request({ path: "/" });
      expect(res.status).toBe(503);
      clock.advance(10);
    }
    for (const e of client.snapshot().endpoints) {
      expect(e.breaker).toBe("closed");
      expect(e.state).toBe("healthy");
      expect(e.consecutiveFailures).toBe(0);
    }
    // The caller's own view: those calls did not succeed.
    expect(client.snapshot().counters.failures).toBe(40);
    await client.close();
  });

  it("honours Retry-After (seconds) before resending", async () => {
    const { client, seen, clock } = setup(
      (_req, n) => (n === 1 ? { status: 503, headers: { "retry-after": "2" } } : { status: 200 }),
      { timeout: { totalMs: 10_000 } },
    );
    const call = client.request({ path: "/" });
    await clock.advanceAsync(1999);
    expect(seen).toHaveLength(1);
    await clock.advanceAsync(1);
    expect((await call).status).toBe(200);
    expect(seen).toHaveLength(2);
  });

  it("honours Retry-After as an HTTP date on 429", async () => {
    const clock = fakeClock();
    let n = 0;
    const client = createClient({
      service: "svc",
      discovery: staticDiscovery(URLS),
      clock,
      transport: mockService(() =>
        ++n === 1
          ? { status: 429, headers: { "retry-after": new Date(clock.wallNow() + 3000).toUTCString() } }
          : { status: 200 },
      ),
    });
    const call = client.request({ method: "POST", path: "/", body: "x" });
    await clock.advanceAsync(2500);
    expect(n).toBe(1);
    await clock.advanceAsync(1000);
    expect((await call).status).toBe(200);
  });

  it("returns at once when Retry-After is longer than the time left", async () => {
    const { client, seen } = setup(() => ({ status: 503, headers: { "retry-after": "5" } }), {
      timeout: { totalMs: 1000 },
    });
    const res = await client.request({ path: "/" });
    expect(res.status).toBe(503);
    expect(seen).toHaveLength(1);
  });

  it("stops with the response when the retry budget is spent, and says so", async () => {
    const { client, seen, clock } = setup(() => ({ status: 503 }), {
      retry: { budget: { ratio: 0, minPerSecond: 0.1, ttlMs: 10_000 } },
    });
    const exhausted: string[] = [];
    client.events.onBudgetExhausted((e) => exhausted.push(e.kind));
    // The floor allows 0.1/s × 10 s = 1 retry in the window.
    const first = client.request({ path: "/" });
    await clock.advanceAsync(1000);
    expect((await first).status).toBe(503);
    expect(seen).toHaveLength(2);
    const second = client.request({ path: "/" });
    await clock.advanceAsync(1000);
    expect((await second).status).toBe(503);
    expect(seen).toHaveLength(3);
    expect(exhausted).toEqual(["retry", "retry"]);
  });

  it("throws WEFT_ERR_BUDGET_EXHAUSTED when the budget stops an error", async () => {
    const { client } = setup(
      () => {
        throw refused();
      },
      { retry: { budget: { ratio: 0, minPerSecond: 0 } } },
    );
    const error = (await client.request({ path: "/" }).catch((e: unknown) => e)) as WeftError;
    expect(error.code).toBe(ErrorCodes.BUDGET_EXHAUSTED);
    expect(error.attempts).toBe(1);
  });

  it("reports each retry with its reason", async () => {
    const { client, clock } = setup((_req, n) => ({ status: n < 3 ? 502 : 200 }));
    const reasons: string[] = [];
    client.events.onRetry((e) => reasons.push(`${e.attempt}:${e.reason}`));
    const call = client.request({ path: "/" });
    await clock.advanceAsync(5000);
    await call;
    expect(reasons).toEqual(["1:502", "2:502"]);
  });

  it("ends a backoff wait at the total deadline", async () => {
    const { client, clock } = setup(() => ({ status: 503 }), {
      retry: { backoff: { baseMs: 10_000, maxMs: 10_000 } },
      timeout: { totalMs: 300 },
      random: () => 0.99,
    });
    const call = client.request({ path: "/" });
    // The wait (up to 9.9 s) would pass the deadline: the call ends with the response now.
    expect((await call).status).toBe(503);
    await clock.advanceAsync(0);
  });
});

describe("hedging", () => {
  function hangingFirst() {
    const cancelled: string[] = [];
    const handler = (req: MeshRequest, n: number): Promise<MockReply> =>
      new Promise((resolve, reject) => {
        if (n === 1) {
          req.cancel?.addEventListener("abort", () => {
            cancelled.push(req.endpoint?.url ?? "");
            reject(req.cancel?.reason);
          });
          return;
        }
        resolve({ status: 200, body: `from ${req.endpoint?.url}` });
      });
    return { cancelled, handler };
  }

  it("sends a hedge to another endpoint after delayMs, takes the first answer and cancels the other", async () => {
    const { cancelled, handler } = hangingFirst();
    const { client, seen, clock } = setup(handler, { hedge: { delayMs: 50 } });
    const hedges: number[] = [];
    client.events.onHedge((e) => hedges.push(e.afterMs));
    const call = client.request({ path: "/" });
    await clock.advanceAsync(49);
    expect(seen).toHaveLength(1);
    await clock.advanceAsync(1);
    const res = await call;
    expect(res.status).toBe(200);
    expect(seen).toHaveLength(2);
    expect(seen[1]?.endpoint?.url).not.toBe(seen[0]?.endpoint?.url);
    expect(hedges).toEqual([50]);
    expect(cancelled).toEqual([seen[0]?.endpoint?.url]);
    // The loser's cancellation does not count against its endpoint.
    expect(client.snapshot().endpoints.reduce((n, e) => n + e.failures, 0)).toBe(0);
  });

  it("resends at once when the hedge fails retryably while the first attempt is still out", async () => {
    const { handler } = hangingFirst();
    let n = 0;
    const { client, seen, clock } = setup(
      (req, count) => {
        n = count;
        // 1st hangs, 2nd (the hedge) answers 503, 3rd answers 200.
        if (count === 2) return { status: 503 };
        return handler(req, count);
      },
      { hedge: { delayMs: 50 }, retry: { backoff: { baseMs: 0, maxMs: 0 } } },
    );
    const call = client.request({ path: "/" });
    await clock.advanceAsync(60);
    const res = await call;
    expect(res.status).toBe(200);
    expect(n).toBe(3);
    expect(new Set(seen.map((r) => r.endpoint?.url)).size).toBe(3);
  });

  it("never hedges a non-idempotent request", async () => {
    const { handler } = hangingFirst();
    const { client, seen, clock } = setup(handler, { hedge: { delayMs: 50 }, timeout: { totalMs: 500 } });
    const call = client.request({ method: "POST", path: "/", body: "x" }).catch((e: WeftError) => e);
    await clock.advanceAsync(600);
    expect(((await call) as WeftError).code).toBe(ErrorCodes.TOTAL_TIMEOUT);
    expect(seen).toHaveLength(1);
  });

  it("draws hedges from the retry budget", async () => {
    const { handler } = hangingFirst();
    const { client, seen, clock } = setup(handler, {
      hedge: { delayMs: 50 },
      retry: { budget: { ratio: 0, minPerSecond: 0 } },
      timeout: { totalMs: 500 },
    });
    const refusedHedges: string[] = [];
    client.events.onBudgetExhausted((e) => refusedHedges.push(e.kind));
    const call = client.request({ path: "/" }).catch((e: WeftError) => e);
    await clock.advanceAsync(600);
    await call;
    expect(seen).toHaveLength(1);
    expect(refusedHedges).toEqual(["hedge"]);
  });

  it("hedges at a percentile of recent latencies once there are enough samples", async () => {
    let n = 0;
    const clock = fakeClock();
    const client = createClient({
      service: "svc",
      discovery: staticDiscovery(URLS),
      clock,
      hedge: { percentile: 90 },
      transport: mockService(
        () =>
          new Promise<MockReply>((resolve) => {
            n++;
            // Nine in ten answer in 10 ms, one in 100 ms.
            clock.setTimer(() => resolve({ status: 200 }), n % 10 === 0 ? 100 : 10);
          }),
      ),
    });
    const hedges: number[] = [];
    client.events.onHedge((e) => hedges.push(e.afterMs));
    for (let i = 0; i < 100; i++) {
      const call = client.request({ path: "/" });
      await clock.advanceAsync(200);
      await call;
    }
    expect(hedges.length).toBeGreaterThan(0);
    // The p90 of 10 ms answers is about 10 ms (5 % histogram buckets).
    for (const afterMs of hedges) expect(afterMs).toBeLessThan(15);
  });
});

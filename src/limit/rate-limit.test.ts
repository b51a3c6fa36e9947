import { describe, expect, it } from "vitest";
import { Cancellation } from "../core/cancel.js";
import { newRequest } from "../core/request.js";
import { ErrorCodes, RateLimitedError, type WeftError } from "../core/errors.js";
import { ClientEventHub, type LimitEvent } from "../core/events.js";
import { BufferedResponse } from "../core/response.js";
import { type MeshRequest, type Service } from "../core/types.js";
import { wheelFor } from "../core/wheel.js";
import { fakeClock, type FakeClock } from "../testing/fake-clock.js";
import { normalizeRateLimitOptions, type RateLimitConfig, type RateLimitOptions } from "./options.js";
import { rateLimitLayer } from "./rate-limit.js";

function request(path: string, overrides: Partial<MeshRequest> = {}): MeshRequest {
  return newRequest({ path, cancel: new Cancellation(), service: "svc", ...overrides });
}

function setup(options: RateLimitOptions, clock: FakeClock = fakeClock()) {
  const events = new ClientEventHub();
  const limited: LimitEvent[] = [];
  events.limited.on((e) => limited.push(e));
  const limiter = rateLimitLayer({
    service: "svc",
    config: normalizeRateLimitOptions(options) as RateLimitConfig,
    clock,
    events,
  });
  const sent: { path: string; at: number }[] = [];
  const next: Service = async (req) => {
    sent.push({ path: req.path, at: clock.now() });
    return new BufferedResponse(200);
  };
  return { limiter, service: limiter.layer(next), sent, limited, clock };
}

function outcome<T>(promise: Promise<T>): Promise<T | unknown> {
  return promise.catch((error: unknown) => error);
}

describe("rate limit", () => {
  it("lets a burst through at once, then a call waits for the next token", async () => {
    const { service, sent, clock, limiter } = setup({ perSecond: 10, burst: 2 });
    await service(request("/a"));
    await service(request("/b"));
    const c = service(request("/c"));
    expect(limiter.snapshot()).toMatchObject({ waiting: 1, rejected: 0 });
    await clock.advanceAsync(99);
    expect(sent.map((s) => s.path)).toEqual(["/a", "/b"]);
    await clock.advanceAsync(1);
    expect((await c).status).toBe(200);
    expect(sent).toEqual([
      { path: "/a", at: 0 },
      { path: "/b", at: 0 },
      { path: "/c", at: 100 },
    ]);
    expect(limiter.snapshot()).toMatchObject({ waiting: 0, tokens: 0 });
  });

  it("waits for a token that comes before the deadline, and rejects at once when it comes after", async () => {
    const { service, sent, clock, limited } = setup({ perSecond: 10, burst: 1 });
    await service(request("/a"));
    const error = (await outcome(service(request("/late", { deadline: 50 })))) as WeftError;
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error.code).toBe(ErrorCodes.RATE_LIMITED);
    expect(limited).toEqual([
      {
        service: "svc",
        method: "GET",
        path: "/late",
        kind: "rate",
        reason: "next token in 100 ms, not before the deadline",
      },
    ]);
    // A token exactly at the deadline is no use either.
    expect(((await outcome(service(request("/edge", { deadline: 100 })))) as WeftError).code).toBe(
      ErrorCodes.RATE_LIMITED,
    );
    // The rejected call reserved nothing: the next one still gets the token at 100.
    const ok = service(request("/ok", { deadline: 150 }));
    await clock.advanceAsync(100);
    expect((await ok).status).toBe(200);
    expect(sent.map((s) => [s.path, s.at])).toEqual([
      ["/a", 0],
      ["/ok", 100],
    ]);
  });

  it("waiters take their tokens in order of arrival, one token apart", async () => {
    const { service, sent, clock } = setup({ perSecond: 10, burst: 1, queue: 5 });
    const all = ["/1", "/2", "/3", "/4"].map((p) => service(request(p)));
    await clock.advanceAsync(300);
    await Promise.all(all);
    expect(sent.map((s) => [s.path, s.at])).toEqual([
      ["/1", 0],
      ["/2", 100],
      ["/3", 200],
      ["/4", 300],
    ]);
  });

  it("rejects at once when `queue` calls are already waiting", async () => {
    const { service, limiter, limited } = setup({ perSecond: 10, burst: 1, queue: 1 });
    void service(request("/a"));
    void service(request("/b"));
    const error = (await outcome(service(request("/c")))) as WeftError;
    expect(error.code).toBe(ErrorCodes.RATE_LIMITED);
    expect(limited.map((e) => e.reason)).toEqual(["no token and 1 calls already waiting"]);
    expect(limiter.snapshot()).toMatchObject({ waiting: 1, rejected: 1 });
  });

  it("with queue 0, a call without a token is rejected at once", async () => {
    const { service, limited } = setup({ perSecond: 10, burst: 1, queue: 0 });
    await service(request("/a"));
    expect(((await outcome(service(request("/b")))) as WeftError).code).toBe(ErrorCodes.RATE_LIMITED);
    expect(limited.map((e) => e.reason)).toEqual(["no token and no queue"]);
  });

  it("a cancelled waiter rejects with the caller's reason and gives its token back", async () => {
    const { service, sent, clock, limiter, limited } = setup({ perSecond: 10, burst: 1 });
    await service(request("/a"));
    const cancel = new Cancellation();
    const b = outcome(service(request("/b", { cancel })));
    expect(limiter.snapshot().tokens).toBeCloseTo(-1, 9);
    const reason = new Error("caller gave up");
    cancel.abort(reason);
    expect(await b).toBe(reason);
    expect(limiter.snapshot()).toMatchObject({ waiting: 0, rejected: 0, tokens: 0 });
    expect(limited).toEqual([]);
    expect(wheelFor(clock).size).toBe(0);
    await clock.advanceAsync(100);
    await service(request("/c"));
    expect(sent.map((s) => [s.path, s.at])).toEqual([
      ["/a", 0],
      ["/c", 100],
    ]);
  });

  it("an already-cancelled call is not made to wait", async () => {
    const { service, limiter } = setup({ perSecond: 10, burst: 1 });
    await service(request("/a"));
    const cancel = new Cancellation();
    const reason = new Error("gone");
    cancel.abort(reason);
    expect(await outcome(service(request("/b", { cancel })))).toBe(reason);
    expect(limiter.snapshot()).toMatchObject({ waiting: 0, tokens: 0 });
  });

  it("refills from elapsed time: after a quiet spell the full burst is there again", async () => {
    const { service, sent, clock } = setup({ perSecond: 100, burst: 5, queue: 0 });
    for (let i = 0; i < 5; i++) await service(request(`/x${i}`));
    await clock.advanceAsync(10_000);
    for (let i = 0; i < 5; i++) await service(request(`/y${i}`));
    expect(sent).toHaveLength(10);
    expect(clock.pendingTimers).toBe(0);
  });

  it("a waiter whose service throws synchronously rejects", async () => {
    const clock = fakeClock();
    const limiter = rateLimitLayer({
      service: "svc",
      config: { perSecond: 10, burst: 1, queue: 1 },
      clock,
      events: new ClientEventHub(),
    });
    const boom = new Error("boom");
    const ok = limiter.layer(async () => new BufferedResponse(200));
    const throwing = limiter.layer(() => {
      throw boom;
    });
    await ok(request("/a"));
    const b = outcome(throwing(request("/b")));
    await clock.advanceAsync(100);
    expect(await b).toBe(boom);
    expect(limiter.snapshot().waiting).toBe(0);
  });
});

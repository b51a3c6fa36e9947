import { describe, expect, it } from "vitest";
import { Cancellation } from "../core/cancel.js";
import { newRequest } from "../core/request.js";
import { defaultClassifier } from "../core/classifier.js";
import { deadlineLayer } from "../core/deadline.js";
import { ConcurrencyLimitError, ErrorCodes, type WeftError } from "../core/errors.js";
import { ClientEventHub, type LimitEvent } from "../core/events.js";
import { BufferedResponse } from "../core/response.js";
import { type MeshRequest, type MeshResponse, type Service } from "../core/types.js";
import { wheelFor } from "../core/wheel.js";
import { fakeClock, type FakeClock } from "../testing/fake-clock.js";
import { concurrencyLayer } from "./concurrency.js";
import { normalizeConcurrencyOptions, type ConcurrencyConfig, type ConcurrencyOptions } from "./options.js";

interface Held {
  readonly req: MeshRequest;
  resolve(status?: number): void;
  reject(error: unknown): void;
}

/** An in-memory `next` that answers only when the test says so. */
function heldService(): { next: Service; calls: Held[] } {
  const calls: Held[] = [];
  const next: Service = (req) =>
    new Promise<MeshResponse>((resolve, reject) => {
      calls.push({ req, resolve: (status = 200) => resolve(new BufferedResponse(status)), reject });
    });
  return { next, calls };
}

function request(path: string, overrides: Partial<MeshRequest> = {}): MeshRequest {
  return newRequest({ path, cancel: new Cancellation(), service: "svc", ...overrides });
}

function setup(options: ConcurrencyOptions, clock: FakeClock = fakeClock()) {
  const events = new ClientEventHub();
  const limited: LimitEvent[] = [];
  events.limited.on((e) => limited.push(e));
  const limiter = concurrencyLayer({
    service: "svc",
    config: normalizeConcurrencyOptions(options) as ConcurrencyConfig,
    clock,
    classifier: defaultClassifier,
    events,
  });
  const { next, calls } = heldService();
  return { limiter, service: limiter.layer(next), calls, limited, clock, events };
}

const paths = (calls: Held[]): string[] => calls.map((c) => c.req.path);

async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** Settles `promise` into a value or the error, so a test can look at either. */
function outcome<T>(promise: Promise<T>): Promise<T | unknown> {
  return promise.catch((error: unknown) => error);
}

describe("concurrency limit (bulkhead)", () => {
  it("the (limit+1)th call waits and proceeds when one finishes", async () => {
    const { limiter, service, calls } = setup({ limit: 2, queue: 10 });
    const a = service(request("/a"));
    const b = service(request("/b"));
    const c = service(request("/c"));
    expect(paths(calls)).toEqual(["/a", "/b"]);
    expect(limiter.snapshot()).toEqual({ adaptive: false, limit: 2, inflight: 2, queued: 1, rejected: 0 });
    calls[0]?.resolve();
    expect((await a).status).toBe(200);
    await flush();
    expect(paths(calls)).toEqual(["/a", "/b", "/c"]);
    expect(limiter.snapshot()).toMatchObject({ inflight: 2, queued: 0 });
    calls[1]?.resolve();
    calls[2]?.resolve(204);
    expect((await b).status).toBe(200);
    expect((await c).status).toBe(204);
    expect(limiter.snapshot()).toMatchObject({ inflight: 0, queued: 0 });
  });

  it("a call that finds the queue full is rejected at once with WEFT_ERR_CONCURRENCY_LIMIT", async () => {
    const { limiter, service, calls, limited } = setup({ limit: 1, queue: 1 });
    void service(request("/a"));
    void service(request("/b"));
    const error = (await outcome(service(request("/c", { method: "POST" })))) as WeftError;
    expect(error).toBeInstanceOf(ConcurrencyLimitError);
    expect(error.code).toBe(ErrorCodes.CONCURRENCY_LIMIT);
    expect(error.attempts).toBe(0);
    expect(error.message).toMatch(
      /concurrency limit of service "svc" reached: queue full \(1 in flight, limit 1; 1 queued\)/,
    );
    expect(paths(calls)).toEqual(["/a"]);
    expect(limited).toEqual([
      {
        service: "svc",
        method: "POST",
        path: "/c",
        kind: "concurrency",
        reason: "queue full (1 in flight, limit 1; 1 queued)",
      },
    ]);
    expect(limiter.snapshot()).toMatchObject({ inflight: 1, queued: 1, rejected: 1 });
  });

  it("with queue 0, a call over the limit is rejected at once", async () => {
    const { service, calls } = setup({ limit: 1, queue: 0 });
    void service(request("/a"));
    const error = (await outcome(service(request("/b")))) as WeftError;
    expect(error.code).toBe(ErrorCodes.CONCURRENCY_LIMIT);
    expect(error.message).toMatch(/1 calls in flight \(limit 1\) and no queue/);
    expect(calls).toHaveLength(1);
  });

  it("a queued call fails at its deadline, and the slot accounting stays right afterwards", async () => {
    const { limiter, service, calls, clock, limited } = setup({ limit: 1, queue: 5 });
    const a = service(request("/a"));
    let settled = false;
    const b = outcome(service(request("/b", { deadline: 100 }))).finally(() => (settled = true));
    await clock.advanceAsync(99);
    expect(settled).toBe(false);
    await clock.advanceAsync(1);
    const error = (await b) as WeftError;
    expect(error.code).toBe(ErrorCodes.CONCURRENCY_LIMIT);
    expect(error.message).toMatch(/deadline reached after 100 ms in the queue/);
    expect(limited.map((e) => e.path)).toEqual(["/b"]);
    expect(limiter.snapshot()).toMatchObject({ inflight: 1, queued: 0, rejected: 1 });
    // The expired waiter never reached the service and holds no slot.
    calls[0]?.resolve();
    await a;
    expect(limiter.snapshot()).toMatchObject({ inflight: 0, queued: 0 });
    const d = service(request("/d"));
    expect(paths(calls)).toEqual(["/a", "/d"]);
    calls[1]?.resolve();
    await d;
    expect(limiter.snapshot().inflight).toBe(0);
    expect(wheelFor(clock).size).toBe(0);
  });

  it("a cancelled queued call rejects with the caller's reason and leaves the queue", async () => {
    const { limiter, service, calls, limited, clock } = setup({ limit: 1, queue: 5 });
    const a = service(request("/a"));
    const cancel = new Cancellation();
    const b = outcome(service(request("/b", { cancel, deadline: 1_000 })));
    const c = service(request("/c"));
    expect(limiter.snapshot().queued).toBe(2);
    const reason = new Error("caller gave up");
    cancel.abort(reason);
    expect(await b).toBe(reason);
    expect(limiter.snapshot()).toMatchObject({ queued: 1, rejected: 0 });
    expect(limited).toEqual([]);
    // Its deadline entry is gone too.
    expect(wheelFor(clock).size).toBe(0);
    calls[0]?.resolve();
    await a;
    await flush();
    expect(paths(calls)).toEqual(["/a", "/c"]);
    calls[1]?.resolve();
    await c;
    expect(limiter.snapshot()).toMatchObject({ inflight: 0, queued: 0 });
  });

  it("serves the queue in FIFO order, also after one in the middle left", async () => {
    const { service, calls } = setup({ limit: 1, queue: 10 });
    const cancel = new Cancellation();
    const pending = ["/1", "/2", "/3", "/4", "/5"].map((p) =>
      outcome(service(request(p, p === "/3" ? { cancel } : {}))),
    );
    cancel.abort(new Error("gone"));
    for (let i = 0; i < 4; i++) {
      calls[i]?.resolve();
      await flush();
    }
    await Promise.all(pending);
    expect(paths(calls)).toEqual(["/1", "/2", "/4", "/5"]);
  });

  it("a call already past its deadline, or already cancelled, is not queued", async () => {
    const clock = fakeClock(500);
    const { service, limiter } = setup({ limit: 1, queue: 5 }, clock);
    void service(request("/a"));
    const late = (await outcome(service(request("/late", { deadline: 400 })))) as WeftError;
    expect(late.code).toBe(ErrorCodes.CONCURRENCY_LIMIT);
    const cancel = new Cancellation();
    const reason = new Error("already gone");
    cancel.abort(reason);
    expect(await outcome(service(request("/cancelled", { cancel })))).toBe(reason);
    expect(limiter.snapshot()).toMatchObject({ inflight: 1, queued: 0, rejected: 1 });
  });

  it("releases the slot when the service below throws or rejects", async () => {
    const events = new ClientEventHub();
    const config = normalizeConcurrencyOptions({ limit: 1, queue: 0 }) as ConcurrencyConfig;
    const limiter = concurrencyLayer({
      service: "svc",
      config,
      clock: fakeClock(),
      classifier: defaultClassifier,
      events,
    });
    const boom = new Error("boom");
    const throwing = limiter.layer(() => {
      throw boom;
    });
    expect(await outcome(throwing(request("/a")))).toBe(boom);
    expect(limiter.snapshot().inflight).toBe(0);
    const rejecting = limiter.layer(() => Promise.reject(boom));
    expect(await outcome(rejecting(request("/b")))).toBe(boom);
    expect(limiter.snapshot().inflight).toBe(0);
  });

  it("under the deadline layer, a call still queued at the total deadline fails with WEFT_ERR_CONCURRENCY_LIMIT and leaves the queue", async () => {
    const clock = fakeClock();
    const { limiter, limited, events } = setup({ limit: 1, queue: 5 }, clock);
    const { next, calls } = heldService();
    const service = deadlineLayer({ clock, events, totalMs: 100 })(limiter.layer(next));
    void outcome(service(request("/a", { timeout: { totalMs: false } })));
    const b = outcome(service(request("/b")));
    await clock.advanceAsync(100);
    // The deadline layer lets the bulkhead name the limit that kept the call waiting.
    expect(((await b) as WeftError).code).toBe(ErrorCodes.CONCURRENCY_LIMIT);
    expect(limiter.snapshot()).toMatchObject({ inflight: 1, queued: 0, rejected: 1 });
    expect(limited.map((e) => e.reason)).toEqual(["deadline reached after 100 ms in the queue"]);
    expect(calls).toHaveLength(1);
  });
});

describe("adaptive concurrency limit", () => {
  it("starts at initialLimit and admits queued calls as healthy calls raise the limit", async () => {
    const { limiter, service, calls, clock } = setup({ adaptive: true, initialLimit: 2 });
    const all = ["/a", "/b", "/c", "/d", "/e"].map((p) => service(request(p)));
    expect(limiter.snapshot()).toEqual({ adaptive: true, limit: 2, inflight: 2, queued: 3, rejected: 0 });
    await clock.advanceAsync(10);
    calls[1]?.resolve(); // started with 2 in flight: limit 2 → 2.8
    await flush();
    expect(paths(calls)).toEqual(["/a", "/b", "/c"]);
    await clock.advanceAsync(10);
    calls[2]?.resolve(); // 2.8 → 3.6: the limit is 3, so two queued calls start
    await flush();
    expect(limiter.snapshot()).toMatchObject({ limit: 3, inflight: 3, queued: 0 });
    expect(paths(calls)).toEqual(["/a", "/b", "/c", "/d", "/e"]);
    for (const call of calls) call.resolve();
    await Promise.all(all);
    expect(limiter.snapshot().inflight).toBe(0);
  });

  it("lowers the limit when calls fail (drops) and when latency rises", async () => {
    const { limiter, service, calls, clock } = setup({ adaptive: true });
    const run = async (n: number, ms: number, status: number): Promise<void> => {
      const start = calls.length;
      const pending = Array.from({ length: n }, (_, i) => service(request(`/${i}`)));
      await clock.advanceAsync(ms);
      for (let i = calls.length - 1; i >= start; i--) calls[i]?.resolve(status);
      await Promise.all(pending);
    };
    await run(20, 10, 200);
    const healthy = limiter.snapshot().limit;
    expect(healthy).toBeGreaterThan(20);
    await run(healthy, 10, 503);
    const afterDrops = limiter.snapshot().limit;
    expect(afterDrops).toBeLessThan(healthy);
    await run(afterDrops, 10, 200);
    const recovered = limiter.snapshot().limit;
    expect(recovered).toBeGreaterThan(afterDrops);
    await run(recovered, 40, 200); // 4× slower than usual
    expect(limiter.snapshot().limit).toBeLessThan(recovered);
  });

  it("a caller's abort does not move the limit", async () => {
    const { limiter, service, calls, clock } = setup({ adaptive: true, initialLimit: 2 });
    const cancel = new Cancellation();
    const reason = new Error("caller left");
    const a = outcome(service(request("/a", { cancel })));
    const b = outcome(service(request("/b", { cancel })));
    await clock.advanceAsync(10);
    cancel.abort(reason);
    calls[1]?.reject(reason);
    calls[0]?.reject(reason);
    expect(await a).toBe(reason);
    expect(await b).toBe(reason);
    expect(limiter.snapshot()).toMatchObject({ limit: 2, inflight: 0 });
  });
});

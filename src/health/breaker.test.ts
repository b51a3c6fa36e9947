import CircuitBreaker from "opossum";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Cancellation } from "../core/cancel.js";
import { defaultClassifier } from "../core/classifier.js";
import { systemClock, type Clock } from "../core/clock.js";
import { Endpoint, type BreakerState } from "../core/endpoint.js";
import { BreakerOpenError, ErrorCodes } from "../core/errors.js";
import { newRequest } from "../core/request.js";
import { BufferedResponse } from "../core/response.js";
import { type MeshRequest, type MeshResponse, type Service } from "../core/types.js";
import { wheelFor } from "../core/wheel.js";
import { fakeClock, type FakeClock } from "../testing/fake-clock.js";
import { breakerLayer, type BreakerLayer } from "./breaker.js";
import { normalizeBreakerOptions, type BreakerConfig, type BreakerOptions } from "./breaker-options.js";

type Transition = [url: string, from: BreakerState, to: BreakerState];

/** A breaker layer on a fake clock over a scripted `next`. */
function setup(options: BreakerOptions = {}, clock: Clock = fakeClock()) {
  const transitions: Transition[] = [];
  const config = normalizeBreakerOptions({ volumeThreshold: 4, resetTimeoutMs: 5000, ...options }) as BreakerConfig;
  const breakers = breakerLayer({
    service: "catalog",
    config,
    classifier: defaultClassifier,
    clock,
    onStateChange: (endpoint, from, to) => {
      transitions.push([endpoint.url, from, to]);
    },
  });
  open.push(breakers);
  let calls = 0;
  /** What the next call answers: a status, an error to reject with, or "defer" (settled by hand). */
  let reply: number | Error | "defer" = 200;
  const deferred: Array<{ resolve: (status: number) => void; reject: (error: unknown) => void }> = [];
  const next: Service = () => {
    calls++;
    if (reply === "defer") {
      return new Promise<MeshResponse>((resolve, reject) => {
        deferred.push({ resolve: (status) => resolve(new BufferedResponse(status)), reject });
      });
    }
    if (reply instanceof Error) return Promise.reject(reply);
    return Promise.resolve(new BufferedResponse(reply));
  };
  const service = breakers.layer(next);
  return {
    breakers,
    transitions,
    clock: clock as FakeClock,
    service,
    deferred,
    get calls() {
      return calls;
    },
    answer(value: number | Error | "defer") {
      reply = value;
    },
    /** Sends `n` calls to `endpoint` one after another; returns their statuses (or error codes). */
    async send(endpoint: Endpoint, n = 1, init: Partial<MeshRequest> = {}): Promise<Array<number | string>> {
      const out: Array<number | string> = [];
      for (let i = 0; i < n; i++) {
        try {
          out.push((await service(request(endpoint, init))).status);
        } catch (error) {
          out.push((error as { code?: string }).code ?? String(error));
        }
      }
      return out;
    },
  };
}

const open: BreakerLayer[] = [];
afterEach(() => {
  for (const breakers of open.splice(0)) breakers.close();
  vi.restoreAllMocks();
});

function request(endpoint: Endpoint | null, init: Partial<MeshRequest> = {}): MeshRequest {
  return newRequest({ path: "/v1/items", endpoint, service: "catalog", ...init });
}

const endpoint = (n = 1): Endpoint => new Endpoint({ url: `http://10.0.0.${n}:8080` }, 0);

const refused = (): Error => Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });

describe("breaker layer: counting", () => {
  it("opens once the failures in the window exceed the threshold, and not before the volume", async () => {
    const t = setup({ volumeThreshold: 4, errorThresholdPercentage: 50 });
    const a = endpoint();
    t.answer(503);
    expect(await t.send(a, 3)).toEqual([503, 503, 503]);
    expect(t.breakers.stateOf(a)).toBe("closed"); // 3 calls < volumeThreshold 4
    await t.send(a, 1);
    expect(t.breakers.stateOf(a)).toBe("open");
    expect(t.transitions).toEqual([[a.url, "closed", "open"]]);
  });

  it("compares the failure percentage strictly (opossum): 50 % of the window keeps it closed at a threshold of 50", async () => {
    const t = setup({ volumeThreshold: 4, errorThresholdPercentage: 50 });
    const a = endpoint();
    await t.send(a, 2); // 200, 200
    t.answer(503);
    await t.send(a, 2); // 2 of 4 failed: 50 %, not above it
    expect(t.breakers.stateOf(a)).toBe("closed");
    await t.send(a, 1); // 3 of 5: 60 %
    expect(t.breakers.stateOf(a)).toBe("open");
  });

  it("counts a 503 response as a failure but still hands the caller the response", async () => {
    const t = setup({ volumeThreshold: 1 });
    const a = endpoint();
    t.answer(503);
    const res = await t.service(request(a));
    expect(res).toBeInstanceOf(BufferedResponse);
    expect(res.status).toBe(503);
    // The failure is recorded before the caller sees the response.
    expect(t.breakers.stateOf(a)).toBe("open");
  });

  it("counts a 503 to a non-idempotent request (a `failure`, not `retryable`) too", async () => {
    const t = setup({ volumeThreshold: 1 });
    const a = endpoint();
    t.answer(503);
    await t.send(a, 1, { method: "POST", idempotent: false });
    expect(t.breakers.stateOf(a)).toBe("open");
  });

  it("counts 404s neither as successes nor as failures", async () => {
    const t = setup({ volumeThreshold: 4, errorThresholdPercentage: 50 });
    const a = endpoint();
    t.answer(404);
    expect(await t.send(a, 20)).toEqual(Array(20).fill(404));
    expect(t.breakers.snapshot().endpoints[0]).toMatchObject({ windowCalls: 0, windowFailures: 0 });
    // Had the 404s counted as successes, 4 failures in 24 calls (17 %) would not open it.
    t.answer(503);
    await t.send(a, 4);
    expect(t.breakers.stateOf(a)).toBe("open");
  });

  it("counts errors as failures and passes the caller's error through unchanged", async () => {
    const t = setup({ volumeThreshold: 2 });
    const a = endpoint();
    const error = refused();
    t.answer(error);
    await expect(t.service(request(a))).rejects.toBe(error);
    await expect(t.service(request(a))).rejects.toBe(error);
    expect(t.breakers.stateOf(a)).toBe("open");
  });

  it("does not count the caller's abort", async () => {
    const t = setup({ volumeThreshold: 1 });
    const a = endpoint();
    const reason = new DOMException("caller gave up", "AbortError");
    const cancel = new Cancellation();
    cancel.abort(reason);
    t.answer(reason);
    await expect(t.service(request(a, { cancel }))).rejects.toBe(reason);
    expect(t.breakers.stateOf(a)).toBe("closed");
    expect(t.breakers.snapshot().endpoints[0]?.windowCalls).toBe(0);
  });

  it("treats a synchronous throw from next as a failed call", async () => {
    const t = setup({ volumeThreshold: 1 });
    const a = endpoint();
    const error = refused();
    const service = t.breakers.layer(() => {
      throw error;
    });
    await expect(service(request(a))).rejects.toBe(error);
    expect(t.breakers.stateOf(a)).toBe("open");
  });

  it("keeps one breaker per endpoint: a failing replica does not trip its neighbour", async () => {
    const t = setup({ volumeThreshold: 2 });
    const [a, b] = [endpoint(1), endpoint(2)];
    t.answer(503);
    await t.send(a, 2);
    t.answer(200);
    await t.send(b, 2);
    expect(t.breakers.stateOf(a)).toBe("open");
    expect(t.breakers.stateOf(b)).toBe("closed");
  });

  it("forgets failures that slid out of the rolling window (one shared rotation)", async () => {
    const t = setup({ volumeThreshold: 4, rollingWindowMs: 10_000, rollingBuckets: 10 });
    const a = endpoint();
    t.answer(503);
    await t.send(a, 3);
    t.clock.advance(10_000);
    await t.send(a, 1); // 1 failure in the window, below the volume
    expect(t.breakers.stateOf(a)).toBe("closed");
    expect(t.breakers.snapshot().endpoints[0]).toMatchObject({ windowCalls: 1, windowFailures: 1 });
    t.clock.advance(5_000); // half a window: the last failure stays
    await t.send(a, 3);
    expect(t.breakers.stateOf(a)).toBe("open");
  });

  it("passes calls straight through when there is no endpoint (layer placed above balance)", async () => {
    const t = setup();
    const res = await t.service(request(null));
    expect(res.status).toBe(200);
    expect(t.breakers.snapshot().tracked).toBe(0);
  });
});

describe("breaker layer: open and half-open", () => {
  /** A breaker that has just opened on endpoint `a`. */
  async function opened(options: BreakerOptions = {}) {
    const t = setup({ volumeThreshold: 2, resetTimeoutMs: 5000, ...options });
    const a = endpoint();
    t.answer(503);
    await t.send(a, 2);
    expect(t.breakers.stateOf(a)).toBe("open");
    t.answer(200);
    return { t, a };
  }

  it("rejects fast with WEFT_ERR_BREAKER_OPEN while open, without calling the endpoint", async () => {
    const { t, a } = await opened();
    const before = t.calls;
    const req = request(a);
    req.call.attempts = 1;
    const error = await t.service(req).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BreakerOpenError);
    expect((error as BreakerOpenError).code).toBe(ErrorCodes.BREAKER_OPEN);
    expect((error as BreakerOpenError).attempts).toBe(1);
    expect(t.calls).toBe(before);
  });

  it("stays open until resetTimeoutMs has passed on the clock, then goes half-open", async () => {
    const { t, a } = await opened({ resetTimeoutMs: 5000 });
    t.clock.advance(4999);
    expect(t.breakers.stateOf(a)).toBe("open");
    t.clock.advance(1);
    expect(t.breakers.stateOf(a)).toBe("halfOpen");
    expect(t.breakers.stateOf(a)).toBe("halfOpen");
    expect(t.transitions).toEqual([
      [a.url, "closed", "open"],
      [a.url, "open", "halfOpen"],
    ]);
  });

  it("lets exactly halfOpenProbes calls through while half-open; the first success closes it", async () => {
    const { t, a } = await opened({ halfOpenProbes: 2 });
    t.clock.advance(5000);
    t.answer("defer");
    const before = t.calls;
    const p1 = t.service(request(a));
    const p2 = t.service(request(a));
    await expect(t.service(request(a))).rejects.toMatchObject({ code: ErrorCodes.BREAKER_OPEN });
    expect(t.calls - before).toBe(2);
    expect(t.breakers.snapshot().endpoints[0]?.probesInFlight).toBe(2);
    t.deferred[0]?.resolve(200);
    expect((await p1).status).toBe(200);
    expect(t.breakers.stateOf(a)).toBe("closed");
    // The other probe settles into the closed breaker and is counted there, beside the first.
    t.deferred[1]?.resolve(200);
    await p2;
    expect(t.breakers.snapshot().endpoints[0]).toMatchObject({ windowCalls: 2, windowFailures: 0 });
    t.answer(200);
    expect(await t.send(a, 3)).toEqual([200, 200, 200]);
  });

  it("with the default of one probe, rejects a second call while the probe is in flight", async () => {
    const { t, a } = await opened({ halfOpenProbes: 1 });
    t.clock.advance(5000);
    t.answer("defer");
    const probe = t.service(request(a));
    await expect(t.service(request(a))).rejects.toBeInstanceOf(BreakerOpenError);
    t.deferred[0]?.resolve(204);
    await probe;
    expect(t.breakers.stateOf(a)).toBe("closed");
  });

  it("re-opens when a probe fails, and goes half-open again after another resetTimeoutMs", async () => {
    const { t, a } = await opened();
    t.clock.advance(5000);
    t.answer(503);
    expect(await t.send(a, 1)).toEqual([503]); // the probe's response reaches the caller
    expect(t.breakers.stateOf(a)).toBe("open");
    expect(await t.send(a, 1)).toEqual([ErrorCodes.BREAKER_OPEN]);
    t.clock.advance(4999);
    expect(t.breakers.stateOf(a)).toBe("open");
    t.clock.advance(1);
    expect(t.breakers.stateOf(a)).toBe("halfOpen");
    t.answer(200);
    await t.send(a, 1);
    expect(t.breakers.stateOf(a)).toBe("closed");
  });

  it("reports every transition through onStateChange, in order", async () => {
    const { t, a } = await opened();
    t.clock.advance(5000);
    t.answer(refused());
    await t.send(a, 1);
    t.clock.advance(5000);
    t.answer(200);
    await t.send(a, 1);
    expect(t.transitions).toEqual([
      [a.url, "closed", "open"],
      [a.url, "open", "halfOpen"],
      [a.url, "halfOpen", "open"],
      [a.url, "open", "halfOpen"],
      [a.url, "halfOpen", "closed"],
    ]);
    expect(t.breakers.stateOf(a)).toBe("closed");
  });

  it("lets an ignorable probe (a 404) free its slot without deciding", async () => {
    const { t, a } = await opened({ halfOpenProbes: 1 });
    t.clock.advance(5000);
    t.answer(404);
    expect(await t.send(a, 2)).toEqual([404, 404]);
    expect(t.breakers.stateOf(a)).toBe("halfOpen");
    t.answer(503);
    await t.send(a, 1);
    expect(t.breakers.stateOf(a)).toBe("open");
  });

  it("closes with a fresh window: the failures that opened it do not re-open it at once", async () => {
    const { t, a } = await opened({ volumeThreshold: 2 });
    t.clock.advance(5000);
    await t.send(a, 1); // probe succeeds
    expect(t.breakers.stateOf(a)).toBe("closed");
    t.answer(503);
    // The fresh window holds the probe's success and this failure: 50 %, not above it. Had the
    // old window been kept (2 failures), 3 of 4 would re-open it.
    await t.send(a, 1);
    expect(t.breakers.stateOf(a)).toBe("closed");
  });

  it("drops the outcome of a call that was admitted before the breaker opened", async () => {
    const t = setup({ volumeThreshold: 2 });
    const a = endpoint();
    t.answer("defer");
    const slow = t.service(request(a));
    t.answer(503);
    await t.send(a, 2);
    expect(t.breakers.stateOf(a)).toBe("open");
    t.clock.advance(5000);
    expect(t.breakers.stateOf(a)).toBe("halfOpen");
    // The old call succeeds now: it is no probe, and must not close the half-open breaker.
    t.deferred[0]?.resolve(200);
    await slow;
    expect(t.breakers.stateOf(a)).toBe("halfOpen");
  });

  it("turns a throwing onStateChange into a warning, never a failed call", async () => {
    const emitWarning = vi.spyOn(process, "emitWarning").mockImplementation(() => {});
    const breakers = breakerLayer({
      service: "catalog",
      config: normalizeBreakerOptions({ volumeThreshold: 1 }) as BreakerConfig,
      classifier: defaultClassifier,
      clock: fakeClock(),
      onStateChange: () => {
        throw new Error("listener bug");
      },
    });
    open.push(breakers);
    const a = endpoint();
    const res = await breakers.layer(async () => new BufferedResponse(503))(request(a));
    expect(res.status).toBe(503);
    expect(breakers.stateOf(a)).toBe("open");
    expect(emitWarning).toHaveBeenCalledWith(
      expect.stringContaining("listener bug"),
      expect.objectContaining({ code: "WEFT_LISTENER_ERROR" }),
    );
  });
});

describe("breaker layer: memory and timers", () => {
  it("makes no opossum instance for an endpoint that has only succeeded, and seeds it with those successes on the first failure", async () => {
    const t = setup({ volumeThreshold: 10, errorThresholdPercentage: 50 });
    const a = endpoint();
    for (let i = 0; i < 8; i++) await t.send(a);
    expect(t.breakers.snapshot().endpoints[0]).toMatchObject({ windowCalls: 8, windowFailures: 0 });
    // 8 successes then 3 failures: 27 % of 11 calls — under the threshold, so it stays closed.
    t.answer(503);
    for (let i = 0; i < 3; i++) await t.send(a);
    expect(t.breakers.snapshot().endpoints[0]).toMatchObject({ windowCalls: 11, windowFailures: 3 });
    expect(t.breakers.stateOf(a)).toBe("closed");
  });

  it("keeps at most maxEndpoints breakers, shutting evicted ones down", async () => {
    const shutdown = vi.spyOn(CircuitBreaker.prototype, "shutdown");
    const t = setup({ maxEndpoints: 2, volumeThreshold: 100 });
    const [a, b, c] = [endpoint(1), endpoint(2), endpoint(3)];
    // A failure gives each endpoint an opossum instance (successes alone do not need one).
    t.answer(503);
    await t.send(a);
    await t.send(b);
    expect(shutdown).not.toHaveBeenCalled();
    await t.send(c);
    expect(shutdown).toHaveBeenCalledTimes(1);
    expect(
      t.breakers
        .snapshot()
        .endpoints.map((e) => e.url)
        .sort(),
    ).toEqual([b.url, c.url]);
  });

  it("reports an evicted open breaker as closed, so its endpoint is not stranded out of rotation", async () => {
    const t = setup({ maxEndpoints: 1, volumeThreshold: 1 });
    const [a, b] = [endpoint(1), endpoint(2)];
    t.answer(503);
    await t.send(a);
    expect(t.breakers.stateOf(a)).toBe("open");
    t.answer(200);
    await t.send(b);
    expect(t.breakers.stateOf(a)).toBe("closed");
    expect(t.transitions).toEqual([
      [a.url, "closed", "open"],
      [a.url, "open", "closed"],
    ]);
    // Its sleep window was cancelled with it.
    expect(wheelFor(t.clock).size).toBe(0);
  });

  it("forget() drops an endpoint's breaker without reporting a transition", async () => {
    const t = setup({ volumeThreshold: 1 });
    const a = endpoint();
    t.answer(503);
    await t.send(a);
    t.breakers.forget(a);
    expect(t.breakers.snapshot().tracked).toBe(0);
    expect(t.transitions).toEqual([[a.url, "closed", "open"]]);
    expect(wheelFor(t.clock).size).toBe(0);
  });

  it("gives 1,000 endpoints one shared rotation timer, not a timer each", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.name);
    process.on("warning", onWarning);
    const setInterval = vi.spyOn(globalThis, "setInterval");
    const setTimeout = vi.spyOn(globalThis, "setTimeout");
    try {
      // Control: opossum's defaults do create intervals per breaker, so the spy sees them.
      new CircuitBreaker(async () => {}, { timeout: false }).shutdown();
      expect(setInterval).toHaveBeenCalled();
      setInterval.mockClear();

      const t = setup({ volumeThreshold: 100 }, fakeClock());
      // One failure each, so every endpoint gets an opossum instance.
      t.answer(503);
      for (let i = 0; i < 1000; i++) await t.send(new Endpoint({ url: `http://10.1.${i >> 8}.${i & 255}:80` }, 0));
      expect(t.breakers.snapshot().tracked).toBe(1000);
      expect(setInterval).not.toHaveBeenCalled();
      expect(setTimeout).not.toHaveBeenCalled();
      expect(t.clock.pendingTimers).toBe(1); // the shared rotation
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).not.toContain("MaxListenersExceededWarning");
    } finally {
      process.off("warning", onWarning);
    }
  });

  it("on the system clock, 1,000 endpoints arm a single unref'd Node timer", async () => {
    const created: NodeJS.Timeout[] = [];
    const realSetTimeout = globalThis.setTimeout;
    const setInterval = vi.spyOn(globalThis, "setInterval");
    vi.spyOn(globalThis, "setTimeout").mockImplementation((fn: () => void, ms?: number) => {
      const timer = realSetTimeout(fn, ms);
      created.push(timer);
      return timer;
    });
    const t = setup({ volumeThreshold: 100 }, systemClock);
    t.answer(503);
    for (let i = 0; i < 1000; i++) await t.send(new Endpoint({ url: `http://10.2.${i >> 8}.${i & 255}:80` }, 0));
    expect(setInterval).not.toHaveBeenCalled();
    expect(created).toHaveLength(1);
    expect(created[0]?.hasRef()).toBe(false);
    t.breakers.close();
  });

  it("close() shuts every breaker down and leaves no timer, even with breakers open", async () => {
    const shutdown = vi.spyOn(CircuitBreaker.prototype, "shutdown");
    const live = new Set<unknown>();
    const realSetTimeout = globalThis.setTimeout;
    const realClearTimeout = globalThis.clearTimeout;
    vi.spyOn(globalThis, "setTimeout").mockImplementation((fn: () => void, ms?: number) => {
      const timer = realSetTimeout(() => {
        live.delete(timer);
        fn();
      }, ms);
      live.add(timer);
      return timer;
    });
    vi.spyOn(globalThis, "clearTimeout").mockImplementation(((timer: NodeJS.Timeout) => {
      live.delete(timer);
      realClearTimeout(timer);
    }) as typeof globalThis.clearTimeout);
    const t = setup({ volumeThreshold: 1 });
    const [a, b, c] = [endpoint(1), endpoint(2), endpoint(3)];
    t.answer(503);
    await t.send(a); // open, its sleep window on the wheel
    await t.send(b);
    t.clock.advance(5000); // both half-open
    await t.send(b); // b re-opens
    t.answer(200);
    await t.send(c); // c closed
    expect(live.size).toBe(0); // opossum's own reset timers were cleared as the breakers opened
    shutdown.mockClear();
    const transitionsBefore = t.transitions.length;

    t.breakers.close();
    // a and b have instances; c only ever succeeded, so it never needed one.
    expect(shutdown).toHaveBeenCalledTimes(2);
    expect(t.breakers.snapshot().tracked).toBe(0);
    expect(wheelFor(t.clock).size).toBe(0);
    t.clock.advance(60_000); // nothing left to fire: no transition, no re-armed timer
    expect(t.transitions.length).toBe(transitionsBefore);
    expect(t.clock.pendingTimers).toBe(0);
    expect(live.size).toBe(0);
    // After close, calls pass straight through.
    expect(await t.send(a)).toEqual([200]);
    expect(t.breakers.snapshot().tracked).toBe(0);
  });
});

import { afterEach, describe, expect, it } from "vitest";
import { metric, points, testMeters, valueOf } from "../../test/helpers/metrics.js";
import { runWithContext } from "../core/context.js";
import {
  AttemptTimeoutError,
  BreakerOpenError,
  TotalTimeoutError,
  ErrorCodes,
  HedgeLostError,
  type WeftError,
} from "../core/errors.js";
import { fakeClock, type FakeClock } from "../testing/fake-clock.js";
import { createClient } from "./mesh.js";
import { STACK_PLAN } from "./plan.js";
import { policy, type Policy } from "./policy.js";
import type { PolicyOptions } from "./policy-options.js";
import { staticDiscovery } from "../discovery/static.js";
import { rejection } from "../../test/helpers/rejection.js";
import { invalidOptionsError } from "../../test/helpers/options.js";

/** A promise with its settle functions, for functions that finish when the test says. */
function deferred<T = string>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets queued promise callbacks run. */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

let clock: FakeClock;
const open: Policy<unknown>[] = [];
function make<F = never>(options: PolicyOptions<F> = {}): Policy<F> {
  const p = policy({ clock, random: () => 0.5, ...options });
  open.push(p);
  return p;
}

describe("policy()", () => {
  clock = fakeClock();
  afterEach(async () => {
    for (const p of open.splice(0)) await p.close();
    clock = fakeClock();
  });

  it("resolves with the function's value, not an envelope, and passes no signal to a function that takes none", async () => {
    const p = make({ retry: {}, breaker: {} });
    const row = { id: 7 };
    expect(await p.execute(async () => row)).toBe(row);
    expect(await p.execute(() => "sync")).toBe("sync");
    let args = -1;
    await p.execute(function () {
      args = arguments.length;
      return Promise.resolve(1);
    });
    expect(args).toBe(0);
    let given: unknown;
    await p.execute(async (signal, attempt) => {
      given = [signal instanceof AbortSignal, signal.aborted, attempt];
    });
    expect(given).toEqual([true, false, 0]);
  });

  it("is the client's stack: the plan's layers, in the plan's order, only those given", () => {
    expect(make().roles).toEqual(["observe", "trace", "deadline"]);
    expect(make({ tracing: false }).roles).toEqual(["observe", "deadline"]);
    expect(make({ retry: {}, breaker: {} }).roles).toEqual([
      "observe",
      "trace",
      "deadline",
      "retry",
      "breaker",
      "breaker",
    ]);
    const all = make({
      fallback: () => null,
      timeout: { attemptMs: 10, totalMs: 100 },
      rateLimit: { perSecond: 10 },
      concurrency: {},
      retry: {},
      breaker: {},
    }).roles;
    expect(all).toEqual([
      "fallback",
      "observe",
      "trace",
      "deadline",
      "rate-limit",
      "concurrency",
      "retry",
      "breaker",
      "breaker",
      "attempt",
    ]);
    const plan = STACK_PLAN.map((e) => e.role);
    const order = all.map((role) => plan.indexOf(role));
    expect(order.every((at, i) => at !== -1 && (i === 0 || at >= (order[i - 1] as number)))).toBe(true);
  });

  it("retries any error until the function succeeds, within maxAttempts, and reports each retry", async () => {
    const p = make({ retry: { maxAttempts: 3, backoff: { baseMs: 10, maxMs: 10 } } });
    const retries: number[] = [];
    p.events.onRetry((e) => retries.push(e.attempt));
    const attempts: number[] = [];
    const pending = p.execute(async (_signal, attempt) => {
      attempts.push(attempt);
      if (attempt < 2) throw new Error(`flaky ${attempt}`);
      return "ok";
    });
    await clock.advanceAsync(20);
    expect(await pending).toBe("ok");
    expect(attempts).toEqual([0, 1, 2]);
    expect(retries).toEqual([1, 2]);
    expect(p.snapshot().counters).toMatchObject({ calls: 1, successes: 1, failures: 0, attempts: 3 });
  });

  it("ends with WEFT_ERR_ATTEMPTS, the last error as its cause, when every attempt failed", async () => {
    const p = make({ retry: { maxAttempts: 3, backoff: { baseMs: 1, maxMs: 1 } } });
    let n = 0;
    const pending = rejection<WeftError>(
      p.execute(async () => {
        throw new Error(`failure ${n++}`);
      }),
    );
    await clock.advanceAsync(10);
    const error = await pending;
    expect(error.code).toBe(ErrorCodes.ATTEMPTS);
    expect(error.attempts).toBe(3);
    expect((error.cause as Error).message).toBe("failure 2");
  });

  it("stops retrying when the retry budget is spent: WEFT_ERR_BUDGET_EXHAUSTED", async () => {
    // No reserve, half a retry per call: two calls earn one retry.
    const p = make({
      retry: { maxAttempts: 5, backoff: { baseMs: 1, maxMs: 1 }, budget: { ratio: 0.5, minPerSecond: 0 } },
    });
    const exhausted: string[] = [];
    p.events.onBudgetExhausted((e) => exhausted.push(e.kind));
    let runs = 0;
    const failing = async (): Promise<never> => {
      runs++;
      throw new Error("down");
    };
    const first = rejection<WeftError>(p.execute(failing));
    await clock.advanceAsync(5);
    expect((await first).code).toBe(ErrorCodes.BUDGET_EXHAUSTED);
    expect(runs).toBe(1);
    const second = rejection<WeftError>(p.execute(failing));
    await clock.advanceAsync(5);
    const error = await second;
    // The second call's deposit made one whole token: one retry, then the budget is spent again.
    expect(runs).toBe(3);
    expect(error.code).toBe(ErrorCodes.BUDGET_EXHAUSTED);
    expect((error.cause as Error).message).toBe("down");
    expect(exhausted).toEqual(["retry", "retry"]);
  });

  it("retries only what retryOn accepts; other errors pass through unchanged and count as failures", async () => {
    const p = make({ retry: { backoff: { baseMs: 1, maxMs: 1 } }, retryOn: (e) => (e as Error).message === "busy" });
    const fatal = new Error("constraint violated");
    let runs = 0;
    const error = await rejection<WeftError>(
      p.execute(async () => {
        runs++;
        throw fatal;
      }),
    );
    expect(error).toBe(fatal);
    expect(runs).toBe(1);
    expect(p.snapshot().counters).toMatchObject({ failures: 1, attempts: 1 });
  });

  it("lets a classifier retry a value, and returns the last value when attempts run out", async () => {
    const p = make({
      retry: { maxAttempts: 2, backoff: { baseMs: 1, maxMs: 1 } },
      classifier: (r) => (r.ok && (r.value as { ready: boolean }).ready ? "success" : r.ok ? "retryable" : "failure"),
    });
    let runs = 0;
    const pending = p.execute(async () => ({ ready: false, run: runs++ }));
    await clock.advanceAsync(5);
    expect(await pending).toEqual({ ready: false, run: 1 });
  });

  it("aborts the function's signal when its run times out, retries it, and ends with the last timeout", async () => {
    const p = make({ timeout: { attemptMs: 100 }, retry: { maxAttempts: 2, backoff: { baseMs: 1, maxMs: 1 } } });
    const signals: AbortSignal[] = [];
    const pending = rejection<WeftError>(
      p.execute(
        (signal) =>
          new Promise((_resolve, reject) => {
            signals.push(signal);
            signal.addEventListener("abort", () => reject(new Error("query cancelled")));
          }),
      ),
    );
    await clock.advanceAsync(100);
    expect(signals).toHaveLength(1);
    expect(signals[0]?.aborted).toBe(true);
    expect(signals[0]?.reason).toBeInstanceOf(AttemptTimeoutError);
    await clock.advanceAsync(110);
    const error = await pending;
    expect(signals).toHaveLength(2);
    expect(error.code).toBe(ErrorCodes.ATTEMPTS);
    // What the function threw once aborted is a consequence: the run failed with the timeout.
    expect((error.cause as WeftError).code).toBe(ErrorCodes.ATTEMPT_TIMEOUT);
    expect(p.snapshot().counters).toMatchObject({ failures: 1, attempts: 2 });
  });

  it("ends at the total deadline even when the function ignores cancellation: WEFT_ERR_TOTAL_TIMEOUT", async () => {
    const p = make({ timeout: { totalMs: 50 }, retry: {} });
    const timeouts: string[] = [];
    p.events.onTimeout((e) => timeouts.push(`${e.kind} ${e.timeoutMs}`));
    const pending = rejection<WeftError>(p.execute(() => new Promise(() => {})));
    await clock.advanceAsync(50);
    const error = await pending;
    expect(error.code).toBe(ErrorCodes.TOTAL_TIMEOUT);
    expect(timeouts).toEqual(["total 50"]);
    expect(p.snapshot().counters).toMatchObject({ failures: 1, timeouts: 1, attempts: 1 });
  });

  it("aborts the function's signal when the caller aborts, rejects with the caller's reason, and blames nothing", async () => {
    const p = make({ retry: {}, breaker: { volumeThreshold: 1 } });
    const controller = new AbortController();
    let seen: AbortSignal | undefined;
    const pending = rejection<WeftError>(
      p.execute(
        (signal) =>
          new Promise((_resolve, reject) => {
            seen = signal;
            signal.addEventListener("abort", () => reject(new Error("cancelled")));
          }),
        { signal: controller.signal },
      ),
    );
    await flush();
    const reason = new Error("user went away");
    controller.abort(reason);
    expect(await pending).toBe(reason);
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toBe(reason);
    expect(p.snapshot().counters).toMatchObject({ ignorable: 1, failures: 0, attempts: 1 });
    expect(p.snapshot().breaker).toMatchObject({ state: "closed", windowFailures: 0 });
    // An already-aborted signal: the function never runs.
    let ran = false;
    const early = await rejection<WeftError>(
      p.execute(
        async () => {
          ran = true;
        },
        { signal: AbortSignal.abort(reason) },
      ),
    );
    expect(early).toBe(reason);
    expect(ran).toBe(false);
  });

  it("inherits the deadline of the request being served (runWithContext)", async () => {
    const p = make();
    const pending = runWithContext({ timeoutMs: 30, clock }, () =>
      rejection<WeftError>(p.execute(() => new Promise(() => {}))),
    );
    await clock.advanceAsync(30);
    const error = await pending;
    expect(error.code).toBe(ErrorCodes.TOTAL_TIMEOUT);
    expect(error.message).toMatch(/inherited/);
  });

  it("opens its breaker after failures, fails fast with WEFT_ERR_BREAKER_OPEN, and half-opens on the clock", async () => {
    const p = make({
      retry: { backoff: { baseMs: 1, maxMs: 1 } },
      breaker: { volumeThreshold: 4, errorThresholdPercentage: 50, resetTimeoutMs: 1000 },
      retryOn: () => false,
    });
    const changes: string[] = [];
    p.events.onBreakerStateChange((e) => changes.push(`${e.from}→${e.to}`));
    let runs = 0;
    const failing = async (): Promise<never> => {
      runs++;
      throw new Error("db down");
    };
    for (let i = 0; i < 3; i++) await rejection<WeftError>(p.execute(failing));
    expect(p.snapshot().breaker?.state).toBe("closed");
    await rejection<WeftError>(p.execute(failing));
    expect(changes).toEqual(["closed→open"]);
    expect(p.snapshot().breaker).toMatchObject({ state: "open", windowCalls: 4, windowFailures: 4 });
    // Open: the function does not run, no retry is tried.
    const refused = await rejection<WeftError>(p.execute(failing));
    expect(refused).toBeInstanceOf(BreakerOpenError);
    expect(refused.code).toBe(ErrorCodes.BREAKER_OPEN);
    expect(refused.message).toBe('the circuit breaker of policy "policy" is open');
    expect(runs).toBe(4);
    await clock.advanceAsync(1000);
    expect(changes).toEqual(["closed→open", "open→halfOpen"]);
    // Half-open: one probe at a time; a call beside it is refused the same way.
    const probe = deferred();
    const probing = p.execute(() => probe.promise);
    expect((await rejection<WeftError>(p.execute(async () => "beside"))).message).toBe(
      'the circuit breaker of policy "policy" is open',
    );
    expect(p.snapshot().breaker).toMatchObject({ state: "halfOpen", probesInFlight: 1 });
    probe.resolve("back");
    expect(await probing).toBe("back");
    expect(changes).toEqual(["closed→open", "open→halfOpen", "halfOpen→closed"]);
    expect(await p.execute(async () => "fine")).toBe("fine");
  });

  it("bounds concurrency with a queue: WEFT_ERR_CONCURRENCY_LIMIT beyond it, queued calls run in turn", async () => {
    const p = make({ concurrency: { limit: 1, queue: 1 } });
    const limited: string[] = [];
    p.events.onLimited((e) => limited.push(e.kind));
    const first = deferred();
    const started: string[] = [];
    const a = p.execute(() => (started.push("a"), first.promise));
    const b = p.execute(async () => (started.push("b"), "b"));
    const c = rejection<WeftError>(p.execute(async () => (started.push("c"), "c")));
    expect((await c).code).toBe(ErrorCodes.CONCURRENCY_LIMIT);
    expect(limited).toEqual(["concurrency"]);
    expect(p.snapshot().limits.concurrency).toMatchObject({ limit: 1, inflight: 1, queued: 1, rejected: 1 });
    await flush();
    expect(started).toEqual(["a"]);
    first.resolve("a");
    expect(await a).toBe("a");
    expect(await b).toBe("b");
    expect(started).toEqual(["a", "b"]);
  });

  it("rate-limits calls: a call waits for its token, or fails with WEFT_ERR_RATE_LIMITED when none comes in time", async () => {
    const p = make({ rateLimit: { perSecond: 1, burst: 1, queue: 1 } });
    expect(await p.execute(async () => 1)).toBe(1);
    let ran = false;
    const waiting = p.execute(async () => ((ran = true), 2));
    const refused = await rejection<WeftError>(p.execute(async () => 3));
    expect(refused.code).toBe(ErrorCodes.RATE_LIMITED);
    expect(p.snapshot().limits.rateLimit).toMatchObject({ waiting: 1, rejected: 1 });
    await clock.advanceAsync(999);
    expect(ran).toBe(false);
    await clock.advanceAsync(1);
    expect(await waiting).toBe(2);
  });

  it("hedges only calls marked idempotent, and aborts the loser's signal", async () => {
    const p = make({ hedge: { delayMs: 10 } });
    const hedges: number[] = [];
    p.events.onHedge((e) => hedges.push(e.attempt));
    const runs: { signal: AbortSignal; done: ReturnType<typeof deferred<string>> }[] = [];
    const slow = (signal: AbortSignal): Promise<string> => {
      const done = deferred();
      runs.push({ signal, done });
      return done.promise;
    };
    // Not idempotent: one run, however slow.
    const once = p.execute(slow);
    await clock.advanceAsync(50);
    expect(runs).toHaveLength(1);
    runs[0]?.done.resolve("only");
    expect(await once).toBe("only");
    runs.length = 0;
    // Idempotent: a second copy after 10 ms; the first answer wins, the other is cancelled.
    const twice = p.execute(slow, { idempotent: true });
    await clock.advanceAsync(10);
    expect(runs).toHaveLength(2);
    expect(hedges).toEqual([1]);
    runs[1]?.done.resolve("hedge won");
    expect(await twice).toBe("hedge won");
    expect(runs[0]?.signal.aborted).toBe(true);
    expect(runs[0]?.signal.reason).toBeInstanceOf(HedgeLostError);
    expect(runs[1]?.signal.aborted).toBe(false);
    expect(p.snapshot().counters).toMatchObject({ calls: 2, successes: 2, attempts: 3 });
    // The policy's own `idempotent` marks every call.
    const always = make({ hedge: { delayMs: 10 }, idempotent: true });
    runs.length = 0;
    const hedged = always.execute(slow);
    await clock.advanceAsync(10);
    expect(runs).toHaveLength(2);
    runs[0]?.done.resolve("first");
    expect(await hedged).toBe("first");
  });

  it("answers a failed call with the fallback's value; the counters still see the failure; a caller's abort is not replaced", async () => {
    const seen: unknown[] = [];
    const p = make({ fallback: (error) => (seen.push(error), "cached") });
    const boom = new Error("boom");
    expect(
      await p.execute(async () => {
        throw boom;
      }),
    ).toBe("cached");
    expect(seen).toEqual([boom]);
    expect(p.snapshot().counters).toMatchObject({ calls: 1, failures: 1 });
    const controller = new AbortController();
    const aborted = rejection<WeftError>(p.execute(() => new Promise(() => {}), { signal: controller.signal }));
    controller.abort(new Error("stop"));
    expect((await aborted).message).toBe("stop");
  });

  it("reports calls and runs in its events and snapshot", async () => {
    const p = make({ name: "orders-db", retry: { backoff: { baseMs: 1, maxMs: 1 } }, breaker: {} });
    const ends: string[] = [];
    const runs: string[] = [];
    p.events.onCallEnd((e) => ends.push(`${e.service} ${e.outcome} ${e.attempts}`));
    p.events.onAttemptStart((e) => runs.push(`start ${e.attempt}`));
    p.events.onAttemptEnd((e) => runs.push(`end ${e.attempt} ${e.outcome}`));
    let n = 0;
    const pending = p.execute(async () => {
      if (n++ === 0) throw new Error("once");
      return "ok";
    });
    await clock.advanceAsync(5);
    await pending;
    expect(runs).toEqual(["start 0", "end 0 retryable", "start 1", "end 1 success"]);
    expect(ends).toEqual(["orders-db success 2"]);
    const snap = p.snapshot();
    expect(snap).toMatchObject({
      name: "orders-db",
      closed: false,
      counters: { calls: 1, inflight: 0, successes: 1, failures: 0, attempts: 2 },
      breaker: { state: "closed" },
      limits: { concurrency: null, rateLimit: null },
    });
    expect(snap.retryBudget).toBeGreaterThan(0);
    expect(snap.stats.window.requestsPerSecond).toBeGreaterThan(0);
    expect(snap.stats.window.successPercent).toBe(100);
    expect(JSON.parse(JSON.stringify(snap))).toEqual(snap);
  });

  it("treats an error a weft client inside the function threw as the function's, not as its own refusal", async () => {
    const p = make({ retry: { maxAttempts: 2, backoff: { baseMs: 1, maxMs: 1 } } });
    let runs = 0;
    // The inner client's deadline: the function's failure, retried (the policy's own would not be).
    const pending = rejection<WeftError>(
      p.execute(async () => {
        runs++;
        throw new TotalTimeoutError(100);
      }),
    );
    await clock.advanceAsync(5);
    expect((await pending).code).toBe(ErrorCodes.ATTEMPTS);
    expect(runs).toBe(2);
    // Every endpoint of the inner service is held out by its breaker: a resend would be refused
    // too, so the retry layer returns it as it is (as a client does).
    runs = 0;
    const inner = new BreakerOpenError("inventory");
    const refused = await rejection<WeftError>(
      p.execute(async () => {
        runs++;
        throw inner;
      }),
    );
    expect(refused).toBe(inner);
    expect(runs).toBe(1);
  });

  it("records metrics through the OpenTelemetry API as a client does, under its name", async () => {
    const meters = testMeters();
    const p = make({ name: "queue", breaker: {}, metrics: { meterProvider: meters.provider } });
    await p.execute(async () => 1);
    await rejection<WeftError>(
      p.execute(async () => {
        throw new Error("x");
      }),
    );
    const collected = await meters.collect();
    expect(valueOf(collected, "weft.client.calls", { "weft.service": "queue", "weft.outcome": "success" })).toBe(1);
    expect(valueOf(collected, "weft.client.calls", { "weft.service": "queue", "weft.outcome": "failure" })).toBe(1);
    expect(valueOf(collected, "weft.client.breakers.open", { "weft.service": "queue" })).toBe(0);
    // A function call is no HTTP request: each run in weft.policy.attempt.duration, none in http.client.request.duration.
    expect(() => metric(collected, "http.client.request.duration")).toThrow(/no metric/);
    expect(metric(collected, "weft.policy.attempt.duration").descriptor.unit).toBe("s");
    const ok = valueOf(collected, "weft.policy.attempt.duration", {
      "weft.service": "queue",
      "weft.outcome": "success",
    });
    const failed = points(collected, "weft.policy.attempt.duration").find(
      (p) => p.attributes["error.type"] === "Error",
    );
    expect((ok as { count: number }).count).toBe(1);
    expect(failed?.attributes["weft.outcome"]).toBe("retryable");
    expect((failed?.value as { count: number }).count).toBe(1);
    await meters.provider.shutdown();
  });

  it("refuses bad options at construction, naming the option, with the client's messages", () => {
    const client = invalidOptionsError(() =>
      createClient({ service: "s", discovery: staticDiscovery(["http://127.0.0.1:1"]), retry: { maxAttempts: 0 } }),
    );
    const mine = invalidOptionsError(() => policy({ retry: { maxAttempts: 0 } }));
    expect(mine.option).toBe("retry.maxAttempts");
    expect(mine.message).toBe(client.message);
    expect(invalidOptionsError(() => policy({ timeout: { attemptMs: -5 } })).message).toBe(
      "invalid option timeout.attemptMs: got -5; expected a positive number of milliseconds or false (off)",
    );
    const unknown = invalidOptionsError(() => policy({ discovery: staticDiscovery(["http://127.0.0.1:1"]) } as never));
    expect(unknown.option).toBe("discovery");
    expect(unknown.message).toMatch(
      /^unknown option discovery; allowed: name, timeout, retry, hedge, breaker, concurrency/,
    );
    expect(invalidOptionsError(() => policy({ retyr: {} } as never)).message).toMatch(/did you mean retry\?/);
    expect(invalidOptionsError(() => policy({ bulkhead: { limit: 1 } } as never)).message).toMatch(
      /concurrency: \{ limit, queue \}/,
    );
    expect(invalidOptionsError(() => policy({ timeout: { header: "x" } } as never)).option).toBe("timeout.header");
    expect(invalidOptionsError(() => policy({ breaker: { maxEndpoints: 2 } } as never)).option).toBe(
      "breaker.maxEndpoints",
    );
    expect(invalidOptionsError(() => policy({ breaker: { volumeTreshold: 2 } } as never)).message).toMatch(
      /did you mean breaker.volumeThreshold/,
    );
    expect(invalidOptionsError(() => policy({ concurrency: { limit: 0 } })).option).toBe("concurrency.limit");
    expect(invalidOptionsError(() => policy({ rateLimit: {} } as never)).option).toBe("rateLimit.perSecond");
    expect(invalidOptionsError(() => policy({ hedge: { maxHedges: 2 } })).message).toMatch(
      /expected delayMs or percentile/,
    );
    expect(invalidOptionsError(() => policy({ fallback: "x" } as never)).option).toBe("fallback");
    expect(invalidOptionsError(() => policy({ classifier: () => "success", retryOn: () => true })).option).toBe(
      "retryOn",
    );
    expect(invalidOptionsError(() => policy({ name: "" })).option).toBe("name");
    expect(invalidOptionsError(() => policy({ clock: {} } as never)).option).toBe("clock");
    expect(invalidOptionsError(() => policy("fast" as never)).option).toBe("options");
  });

  it("refuses calls once closed, and leaves no timer behind", async () => {
    const p = make({ breaker: {}, retry: {}, timeout: { totalMs: 1000 } });
    await p.execute(async () => 1);
    await expect(p.execute("not a function" as never)).rejects.toThrow(TypeError);
    await p.close();
    expect(p.closed).toBe(true);
    expect(p.snapshot().closed).toBe(true);
    const error = await rejection<WeftError>(p.execute(async () => 2));
    expect(error.code).toBe(ErrorCodes.CLIENT_CLOSED);
    expect(error.message).toBe('policy "policy" is closed');
    await clock.advanceAsync(2000);
    expect(clock.pendingTimers).toBe(0);
  });
});

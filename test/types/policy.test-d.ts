/**
 * Type tests for `policy()`: its options, `execute`'s value and events. Checked by tsc, never run
 * (vitest's typecheck mode). A line marked `@ts-expect-error` must not compile.
 */
import { describe, expectTypeOf, it } from "vitest";
import { policy, type BreakerStateEvent, type Disposer, type Policy, type PolicySnapshot, type RetryEvent } from "weft";

describe("policy options", () => {
  it("takes none, or the client's policy options", () => {
    expectTypeOf(policy()).toEqualTypeOf<Policy>();
    policy({ name: "db", timeout: { attemptMs: 100, totalMs: 1000 }, retry: { maxAttempts: 3 }, breaker: {} });
    policy({ concurrency: { limit: 8, queue: 16 }, rateLimit: { perSecond: 100 }, hedge: { delayMs: 20 } });
    policy({ retryOn: (error) => error instanceof Error, idempotent: true });
    policy({ classifier: (result) => (result.ok ? "success" : "retryable") });
    // @ts-expect-error -- a timeout is milliseconds or false, not "100ms"
    policy({ timeout: { attemptMs: "100ms" } });
    // @ts-expect-error -- there is no request to carry a deadline header
    policy({ timeout: { header: "x-timeout" } });
    // @ts-expect-error -- a policy has one breaker
    policy({ breaker: { maxEndpoints: 10 } });
    // @ts-expect-error -- a policy wraps a function: no discovery
    policy({ discovery: {} });
    // @ts-expect-error -- an outcome is one of the classifier's five words
    policy({ classifier: () => "ok" });
  });
});

describe("execute", () => {
  it("resolves with the function's value, or the fallback's", () => {
    const p = policy({ retry: {} });
    expectTypeOf(p.execute(async () => 42)).toEqualTypeOf<Promise<number>>();
    expectTypeOf(p.execute(() => "sync")).toEqualTypeOf<Promise<string>>();
    expectTypeOf(p.execute((signal, attempt) => Promise.resolve({ signal, attempt }))).toEqualTypeOf<
      Promise<{ signal: AbortSignal; attempt: number }>
    >();
    const withFallback = policy({ fallback: () => null });
    expectTypeOf(withFallback.execute(async () => 42)).toEqualTypeOf<Promise<number | null>>();
    void p.execute(async () => 1, { signal: new AbortController().signal, idempotent: true });
    // @ts-expect-error -- per-call options are { signal?, idempotent? }
    void p.execute(async () => 1, { timeout: 10 });
  });

  it("types its events and snapshot", () => {
    const p = policy({ breaker: {} });
    expectTypeOf(p.events.onRetry).parameter(0).parameter(0).toEqualTypeOf<RetryEvent>();
    expectTypeOf(p.events.onBreakerStateChange).parameter(0).parameter(0).toEqualTypeOf<BreakerStateEvent>();
    expectTypeOf(p.events.onRetry(() => {})).toEqualTypeOf<Disposer>();
    // @ts-expect-error -- a policy has no discovery, so no discovery events
    p.events.onDiscoveryState(() => {});
    expectTypeOf(p.snapshot()).toEqualTypeOf<PolicySnapshot>();
  });
});

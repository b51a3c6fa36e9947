/**
 * The limits inside a real client stack, inserted where the lead will wire them (below
 * `deadline`), through the public `options.stack` edit — so the total deadline, the caller's
 * signal and the error pass-through are the client's own.
 */
import { describe, expect, it } from "vitest";
import { createClient } from "../client/mesh.js";
import { defaultClassifier } from "../core/classifier.js";
import { ErrorCodes, type WeftError } from "../core/errors.js";
import { ClientEventHub } from "../core/events.js";
import type { MeshResponse } from "../core/types.js";
import { staticDiscovery } from "../discovery/static.js";
import { fakeClock } from "../testing/fake-clock.js";
import { mockService } from "../testing/mock-service.js";
import { concurrencyLayer } from "./concurrency.js";
import {
  normalizeConcurrencyOptions,
  normalizeRateLimitOptions,
  type ConcurrencyConfig,
  type RateLimitConfig,
} from "./options.js";
import { rateLimitLayer } from "./rate-limit.js";

describe("limits in a client stack", () => {
  it("the bulkhead below the deadline layer: queue full, caller abort and total deadline", async () => {
    const clock = fakeClock();
    const limiter = concurrencyLayer({
      service: "s",
      config: normalizeConcurrencyOptions({ limit: 1, queue: 2 }) as ConcurrencyConfig,
      clock,
      classifier: defaultClassifier,
      events: new ClientEventHub(),
    });
    const answers: ((res: MeshResponse | { status: number }) => void)[] = [];
    const client = createClient({
      service: "s",
      discovery: staticDiscovery(["http://127.0.0.1:1"]),
      transport: mockService(() => new Promise((resolve) => answers.push(resolve))),
      clock,
      timeout: { totalMs: 1_000 },
      stack: (s) => s.insertAfter("deadline", { role: "concurrency", layer: limiter.layer }),
    });
    expect(client.stack.roles.indexOf("concurrency")).toBe(client.stack.roles.indexOf("deadline") + 1);

    const a = client.request({ path: "/a" });
    const controller = new AbortController();
    const b = client.request({ path: "/b", signal: controller.signal }).catch((e: unknown) => e);
    const c = client.request({ path: "/c", timeout: { totalMs: 50 } }).catch((e: unknown) => e);
    const full = (await client.request({ path: "/d" }).catch((e: unknown) => e)) as WeftError;
    expect(full.code).toBe(ErrorCodes.CONCURRENCY_LIMIT);
    expect(limiter.snapshot()).toMatchObject({ inflight: 1, queued: 2 });

    const reason = new Error("user navigated away");
    controller.abort(reason);
    expect(await b).toBe(reason);
    expect(limiter.snapshot().queued).toBe(1);

    await clock.advanceAsync(50);
    // Queued until the deadline: the error names the limit, not just the clock.
    expect(((await c) as WeftError).code).toBe(ErrorCodes.CONCURRENCY_LIMIT);
    expect(limiter.snapshot()).toMatchObject({ inflight: 1, queued: 0 });

    answers[0]?.({ status: 200 });
    expect((await a).status).toBe(200);
    expect(limiter.snapshot()).toMatchObject({ inflight: 0, queued: 0 });
    expect(answers).toHaveLength(1);
    await client.close();
  });

  it("the rate limit below the deadline layer: waits within the deadline, rejects beyond it", async () => {
    const clock = fakeClock();
    const limiter = rateLimitLayer({
      service: "s",
      config: normalizeRateLimitOptions({ perSecond: 10, burst: 1 }) as RateLimitConfig,
      clock,
      events: new ClientEventHub(),
    });
    const sentAt: number[] = [];
    const client = createClient({
      service: "s",
      discovery: staticDiscovery(["http://127.0.0.1:1"]),
      transport: mockService(() => {
        sentAt.push(clock.now());
        return { status: 200 };
      }),
      clock,
      timeout: { totalMs: 1_000 },
      stack: (s) => s.insertAfter("deadline", { role: "rate-limit", layer: limiter.layer }),
    });
    await client.request({ path: "/a" });
    const late = (await client.request({ path: "/b", timeout: { totalMs: 50 } }).catch((e: unknown) => e)) as WeftError;
    expect(late.code).toBe(ErrorCodes.RATE_LIMITED);
    const waits = client.request({ path: "/c" });
    await clock.advanceAsync(100);
    expect((await waits).status).toBe(200);
    expect(sentAt).toEqual([0, 100]);
    await client.close();
  });
});

describe("limits through client options", () => {
  it("places rate-limit and concurrency below deadline and above retry, and reports them in the snapshot", async () => {
    const clock = fakeClock();
    const answers: ((res: { status: number }) => void)[] = [];
    const client = createClient({
      service: "s",
      discovery: staticDiscovery(["http://127.0.0.1:1"]),
      transport: mockService(() => new Promise((resolve) => answers.push(resolve))),
      clock,
      concurrency: { limit: 1, queue: 0 },
      rateLimit: { perSecond: 100 },
    });
    const roles = client.stack.roles;
    expect(roles.slice(roles.indexOf("deadline"), roles.indexOf("retry") + 1)).toEqual([
      "deadline",
      "rate-limit",
      "concurrency",
      "retry",
    ]);
    const a = client.request({ path: "/a" });
    const b = (await client.request({ path: "/b" }).catch((e: WeftError) => e)) as WeftError;
    expect(b.code).toBe(ErrorCodes.CONCURRENCY_LIMIT);
    expect(client.snapshot().limits.concurrency).toMatchObject({ limit: 1, inflight: 1, rejected: 1 });
    expect(client.snapshot().limits.rateLimit).toMatchObject({ perSecond: 100 });
    answers[0]?.({ status: 200 });
    expect((await a).status).toBe(200);
    await client.close();
  });

  it("rejects bad limit options at construction", () => {
    expect(() =>
      createClient({ service: "s", discovery: staticDiscovery(["http://127.0.0.1:1"]), concurrency: { limit: -1 } }),
    ).toThrow(/concurrency.limit/);
    expect(() =>
      createClient({ service: "s", discovery: staticDiscovery(["http://127.0.0.1:1"]), rateLimit: { perSecond: 0 } }),
    ).toThrow(/rateLimit.perSecond/);
  });
});

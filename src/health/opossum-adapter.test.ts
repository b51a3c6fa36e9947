/**
 * Pins what weft relies on in opossum (the list in `opossum-adapter.ts`'s header), against the
 * real package: an opossum upgrade that changes any of it fails here, by name, before the breaker
 * tests fail for reasons that are hard to read. The first block checks opossum itself; the second
 * checks the adapter built on it.
 */
import { EventEmitter } from "node:events";
import CircuitBreaker from "opossum";
import { afterEach, describe, expect, it, vi } from "vitest";
import { breakerWindow, ROTATE_EVENT, type BreakerWindow, type BreakerWindowOptions } from "./opossum-adapter.js";

const shutdown: Array<{ shutdown(): void }> = [];
afterEach(() => {
  for (const b of shutdown.splice(0)) b.shutdown();
  vi.restoreAllMocks();
});

function opossum(options: Record<string, unknown> = {}): CircuitBreaker<[boolean], void> {
  const b = new CircuitBreaker(
    (failed: boolean) => (failed ? Promise.reject(new Error("failed")) : Promise.resolve()),
    {
      timeout: false,
      resetTimeout: 2_147_483_647,
      errorThresholdPercentage: 50,
      volumeThreshold: 2,
      rollingCountTimeout: 1_000,
      rollingCountBuckets: 4,
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      rotateBucketController: new EventEmitter(),
      ...options,
    },
  );
  shutdown.push(b);
  return b;
}

describe("opossum 9: what the adapter relies on", () => {
  it("starts half-open with the documented state option, and pendingClose stays true until a fired call decides", async () => {
    const b = opossum({ state: { closed: false, halfOpen: true } });
    expect(b.halfOpen).toBe(true);
    expect(b.closed).toBe(false);
    expect(b.pendingClose).toBe(true);

    await b.fire(false);
    expect(b.closed).toBe(true);
    expect(b.halfOpen).toBe(false);
  });

  it("re-opens a half-open instance on its first failure, and pendingClose is then false", async () => {
    const b = opossum({ state: { closed: false, halfOpen: true } });
    const opened = vi.fn();
    b.on("open", opened);
    await expect(b.fire(true)).rejects.toThrow("failed");
    expect(opened).toHaveBeenCalledTimes(1);
    expect(b.opened).toBe(true);
    expect(b.pendingClose).toBe(false);
  });

  it("keeps the rolling window's sums in stats.successes and stats.failures", async () => {
    const b = opossum({ volumeThreshold: 100 });
    await b.fire(false);
    await b.fire(false);
    await b.fire(true).catch(() => {});
    expect(b.stats.successes).toBe(2);
    expect(b.stats.failures).toBe(1);
    expect(b.stats.fires).toBe(3);
  });

  it("counts a success when its own fire and success events are emitted, without fire()", () => {
    const b = opossum();
    b.emit("fire");
    b.emit("success", undefined, 0);
    expect(b.stats.fires).toBe(1);
    expect(b.stats.successes).toBe(1);
    expect(b.stats.failures).toBe(0);
  });

  it("slides its window one bucket per rotate event of its rotateBucketController, and stops listening at shutdown", async () => {
    const controller = new EventEmitter();
    const b = opossum({ rotateBucketController: controller, volumeThreshold: 100 });
    expect(controller.listenerCount(ROTATE_EVENT)).toBe(1);
    await b.fire(true).catch(() => {});
    for (let i = 0; i < 3; i++) controller.emit(ROTATE_EVENT);
    expect(b.stats.failures).toBe(1); // 4 buckets: three slides keep the first bucket in the window
    controller.emit(ROTATE_EVENT);
    expect(b.stats.failures).toBe(0); // the fourth slides it out
    b.shutdown();
    expect(controller.listenerCount(ROTATE_EVENT)).toBe(0);
  });

  it("opens before fire() returns when an action that throws synchronously passes the threshold", () => {
    const b = new CircuitBreaker(
      (failed: boolean) => {
        if (failed) throw new Error("failed");
        return Promise.resolve();
      },
      {
        timeout: false,
        resetTimeout: 2_147_483_647,
        errorThresholdPercentage: 50,
        volumeThreshold: 2,
        rotateBucketController: new EventEmitter(),
        rollingPercentilesEnabled: false,
        enableSnapshots: false,
      },
    );
    shutdown.push(b);
    const opened = vi.fn();
    b.on("open", opened);
    b.fire(true).catch(() => {});
    expect(opened).not.toHaveBeenCalled(); // below the volume threshold
    b.fire(true).catch(() => {});
    expect(opened).toHaveBeenCalledTimes(1); // synchronously, with no await between
    expect(b.opened).toBe(true);
  });

  it("arms a reset timer when it opens and clears it at shutdown, so an opened instance leaves no timer behind", async () => {
    const armed = vi.spyOn(globalThis, "setTimeout");
    const cleared = vi.spyOn(globalThis, "clearTimeout");
    const b = opossum({ volumeThreshold: 1 });
    await b.fire(true).catch(() => {});
    expect(b.opened).toBe(true);
    const resets: unknown[] = [];
    armed.mock.calls.forEach((call, i) => {
      if (call[1] === 2_147_483_647) resets.push(armed.mock.results[i]?.value);
    });
    expect(resets).toHaveLength(1);
    b.shutdown();
    expect(cleared.mock.calls.map((call) => call[0])).toContain(resets[0]);
  });
});

describe("breakerWindow", () => {
  const controller = new EventEmitter();
  controller.setMaxListeners(0);
  function window(overrides: Partial<BreakerWindowOptions> = {}): {
    w: BreakerWindow;
    opened: ReturnType<typeof vi.fn>;
    closed: ReturnType<typeof vi.fn>;
  } {
    const opened = vi.fn();
    const closed = vi.fn();
    const w = breakerWindow({
      errorThresholdPercentage: 50,
      volumeThreshold: 4,
      rollingWindowMs: 1_000,
      rollingBuckets: 4,
      rotateBucketController: controller,
      name: "a",
      group: "svc",
      halfOpen: false,
      onOpen: opened,
      onClose: closed,
      ...overrides,
    });
    shutdown.push(w);
    return { w, opened, closed };
  }

  it("counts successes and failures while closed, and opens synchronously past the threshold", () => {
    const { w, opened } = window();
    w.success();
    w.success();
    w.failure();
    expect([w.calls, w.failures, w.counting]).toEqual([3, 1, true]);
    expect(opened).not.toHaveBeenCalled();
    w.failure(); // 2 of 4: not past 50 % (opossum compares strictly)
    expect(opened).not.toHaveBeenCalled();
    w.failure(); // 3 of 5
    expect(opened).toHaveBeenCalledTimes(1);
    expect(w.counting).toBe(false);
  });

  it("starts half-open when asked: the first success closes it", async () => {
    const { w, opened, closed } = window({ halfOpen: true });
    expect(w.counting).toBe(true);
    w.success();
    await Promise.resolve(); // fire()'s resolution
    await Promise.resolve();
    expect(closed).toHaveBeenCalledTimes(1);
    expect(opened).not.toHaveBeenCalled();
  });

  it("starts half-open when asked: the first failure re-opens it, at once", () => {
    const { w, opened, closed } = window({ halfOpen: true });
    w.failure();
    expect(opened).toHaveBeenCalledTimes(1);
    expect(closed).not.toHaveBeenCalled();
    expect(w.counting).toBe(false);
  });

  it("forgets counts as the shared rotation slides the window", () => {
    const { w } = window({ volumeThreshold: 100 });
    w.failure();
    w.success();
    for (let i = 0; i < 4; i++) controller.emit(ROTATE_EVENT);
    expect([w.calls, w.failures]).toEqual([0, 0]);
  });

  it("stops listening to the rotation at shutdown and keeps its counts readable", () => {
    const own = new EventEmitter();
    const { w } = window({ rotateBucketController: own, volumeThreshold: 100 });
    w.failure();
    expect(own.listenerCount(ROTATE_EVENT)).toBe(1);
    w.shutdown();
    expect(own.listenerCount(ROTATE_EVENT)).toBe(0);
    expect(w.failures).toBe(1);
  });
});

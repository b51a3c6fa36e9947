import { describe, expect, it } from "vitest";
import { fakeClock } from "../testing/fake-clock.js";
import { BucketRotation } from "./rotation.js";

/** Subscribes `n` listeners the way opossum's Status does; returns the rotation count each saw. */
function subscribe(rotation: BucketRotation, n: number): { counts: number[]; off(i: number): void } {
  const counts = Array<number>(n).fill(0);
  const handlers = counts.map((_, i) => () => void counts[i]!++);
  const controllers = handlers.map((handler) => {
    const controller = rotation.controller();
    controller.on("rotate", handler);
    return controller;
  });
  return { counts, off: (i) => void controllers[i]!.removeListener("rotate", handlers[i]!) };
}

describe("BucketRotation", () => {
  it("slides every subscriber's window once per bucket, from one timer", () => {
    const clock = fakeClock();
    const rotation = new BucketRotation(clock, 10_000, 10);
    const { counts } = subscribe(rotation, 600); // three controllers' worth
    expect(clock.pendingTimers).toBe(1);
    clock.advance(999);
    expect(counts.every((c) => c === 0)).toBe(true);
    clock.advance(1);
    expect(counts.every((c) => c === 1)).toBe(true);
    clock.advance(3000);
    expect(counts.every((c) => c === 4)).toBe(true);
    expect(clock.pendingTimers).toBe(1);
    rotation.stop();
  });

  it("shards subscribers so no controller holds more than a few hundred", () => {
    const rotation = new BucketRotation(fakeClock(), 10_000, 10);
    const controllers = new Set(
      Array.from({ length: 1000 }, () => {
        const controller = rotation.controller();
        controller.on("rotate", () => {});
        return controller;
      }),
    );
    expect(controllers.size).toBe(4);
    for (const controller of controllers) expect(controller.listenerCount("rotate")).toBeLessThanOrEqual(256);
    rotation.stop();
  });

  it("catches up once per missed bucket when its tick comes late, at most a window's worth", () => {
    // A clock whose one timer fires only when the test says so, as late as it likes.
    let now = 0;
    const timer: { fire: (() => void) | null } = { fire: null };
    const clock = {
      now: () => now,
      wallNow: () => now,
      setTimer: (fn: () => void) => {
        timer.fire = fn;
        return { cancel: () => (timer.fire = null) };
      },
    };
    const rotation = new BucketRotation(clock, 10_000, 10);
    const { counts } = subscribe(rotation, 1);
    now = 3500; // the event loop stalled: buckets due at 1000, 2000 and 3000 all missed their tick
    timer.fire?.();
    expect(counts[0]).toBe(3);
    now = 60_000;
    timer.fire?.();
    expect(counts[0]).toBe(13); // ten more: the whole window, not 57
    rotation.stop();
  });

  it("stops its timer when nobody listens, and starts again for the next subscriber", () => {
    const clock = fakeClock();
    const rotation = new BucketRotation(clock, 1000, 10);
    const { counts, off } = subscribe(rotation, 1);
    off(0);
    clock.advance(100);
    expect(rotation.running).toBe(false);
    expect(clock.pendingTimers).toBe(0);
    const again = subscribe(rotation, 1);
    clock.advance(100);
    expect(again.counts[0]).toBe(1);
    expect(counts[0]).toBe(0);
    rotation.stop();
  });

  it("stop() cancels the timer and drops every subscriber", () => {
    const clock = fakeClock();
    const rotation = new BucketRotation(clock, 1000, 10);
    const { counts } = subscribe(rotation, 300);
    rotation.stop();
    expect(clock.pendingTimers).toBe(0);
    expect(rotation.listeners).toBe(0);
    clock.advance(10_000);
    expect(counts.every((c) => c === 0)).toBe(true);
    rotation.controller(); // a late subscriber does not restart it
    expect(rotation.running).toBe(false);
  });
});

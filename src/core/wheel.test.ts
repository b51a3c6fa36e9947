import { describe, expect, it } from "vitest";
import { fakeClock } from "../testing/fake-clock.js";
import { DeadlineWheel } from "./wheel.js";

describe("DeadlineWheel", () => {
  it("fires deadlines in time order through one timer", () => {
    const clock = fakeClock();
    const wheel = new DeadlineWheel(clock);
    const fired: string[] = [];
    wheel.schedule(30, () => fired.push("30"));
    wheel.schedule(10, () => fired.push("10"));
    wheel.schedule(20, () => fired.push("20"));
    expect(clock.pendingTimers).toBe(1);
    clock.advance(15);
    expect(fired).toEqual(["10"]);
    clock.advance(20);
    expect(fired).toEqual(["10", "20", "30"]);
    expect(wheel.size).toBe(0);
  });

  it("a cancelled deadline never fires, and an empty wheel does not re-arm", () => {
    const clock = fakeClock();
    const wheel = new DeadlineWheel(clock);
    let fired = 0;
    const a = wheel.schedule(10, () => fired++);
    const b = wheel.schedule(50, () => fired++);
    a.cancel();
    b.cancel();
    expect(wheel.size).toBe(0);
    clock.advance(100);
    expect(fired).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it("re-arms for an earlier deadline added later", () => {
    const clock = fakeClock();
    const wheel = new DeadlineWheel(clock);
    const fired: number[] = [];
    wheel.schedule(100, () => fired.push(100));
    wheel.schedule(5, () => fired.push(5));
    clock.advance(5);
    expect(fired).toEqual([5]);
    clock.advance(95);
    expect(fired).toEqual([5, 100]);
  });

  it("reuses a millisecond's bucket for deadlines scheduled and cancelled one after another", () => {
    const clock = fakeClock();
    const wheel = new DeadlineWheel(clock);
    let fired = 0;
    // Sequential calls: each schedules its deadline and cancels it when it ends, all within 1 ms.
    for (let i = 0; i < 10_000; i++) wheel.schedule(15_000, () => fired++).cancel();
    expect(wheel.size).toBe(0);
    expect(wheel.ticks).toBe(1);
    clock.advance(100);
    for (let i = 0; i < 1000; i++) wheel.schedule(clock.now() + 15_000, () => fired++).cancel();
    expect(wheel.ticks).toBe(2);
    const kept = wheel.schedule(clock.now() + 15_000, () => fired++);
    clock.advance(15_001);
    expect(fired).toBe(1);
    expect(wheel.ticks).toBe(0);
    kept.cancel();
  });

  it("keeps serving after many deadlines come and go", () => {
    const clock = fakeClock();
    const wheel = new DeadlineWheel(clock);
    let fired = 0;
    for (let i = 0; i < 1000; i++) {
      const entry = wheel.schedule(i % 50, () => fired++);
      if (i % 2 === 0) entry.cancel();
    }
    clock.advance(60);
    expect(fired).toBe(500);
    expect(wheel.size).toBe(0);
  });
});

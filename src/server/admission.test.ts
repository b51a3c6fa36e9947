import { describe, expect, it } from "vitest";
import { Admission } from "./admission.js";

describe("Admission", () => {
  it("admits up to the limit and sheds the rest, counting by class", () => {
    const a = new Admission({ adaptive: false, limit: 4 });
    expect([1, 2, 3, 4].map(() => a.tryAcquire("normal"))).toEqual([true, true, true, true]);
    expect(a.tryAcquire("normal")).toBe(false);
    expect(a.snapshot()).toMatchObject({
      adaptive: false,
      limit: 4,
      inflight: 4,
      shed: { normal: 1, low: 0, high: 0, critical: 0 },
    });
    a.release(Number.NaN, 0);
    expect(a.tryAcquire("normal")).toBe(true);
  });

  it("sheds low first, high last, critical never", () => {
    const a = new Admission({ adaptive: false, limit: 10 });
    for (let i = 0; i < 8; i++) expect(a.tryAcquire("low")).toBe(true);
    // low may fill 80 %: the ninth low request is shed while normal ones still get in.
    expect(a.tryAcquire("low")).toBe(false);
    expect(a.tryAcquire("normal")).toBe(true);
    expect(a.tryAcquire("normal")).toBe(true);
    expect(a.tryAcquire("normal")).toBe(false);
    // high may run a quarter over the limit.
    expect([1, 2].map(() => a.tryAcquire("high"))).toEqual([true, true]);
    expect(a.tryAcquire("high")).toBe(false);
    expect(a.tryAcquire("critical")).toBe(true);
    expect(a.inflight).toBe(13);
    expect(a.snapshot().shed).toEqual({ critical: 0, high: 1, normal: 1, low: 1 });
  });

  it("feeds the adaptive limit only the latencies that say something", () => {
    const a = new Admission({
      adaptive: true,
      initialLimit: 20,
      minLimit: 3,
      maxLimit: 1000,
      windowMs: 100,
      minSamples: 5,
      bufferPercent: 25,
      minRttWindowMs: 30_000,
    });
    for (let i = 0; i < 20; i++) a.tryAcquire("normal");
    for (let i = 0; i < 10; i++) a.release(Number.NaN, 200);
    expect(a.snapshot().sampleRttMs).toBeNull();
    for (let i = 0; i < 10; i++) a.release(8, 200 + i);
    // The next release after the window closes it: its median is of the answered requests only.
    a.tryAcquire("normal");
    a.release(Number.NaN, 300);
    expect(a.snapshot()).toMatchObject({ adaptive: true, sampleRttMs: 8, minRttMs: 8, inflight: 0 });
  });
});

import { describe, expect, it } from "vitest";
import { seededRandom } from "../core/clock.js";
import { Endpoint } from "../core/endpoint.js";
import { InvalidOptionsError } from "../core/errors.js";
import type { MeshRequest } from "../core/types.js";
import { fakeClock } from "../testing/fake-clock.js";
import { LoadTracker } from "./load.js";
import type { PickerContext } from "./picker.js";
import { cumulativeWeights, random, searchCumulative } from "./random.js";

const first = { attempt: 0 } as MeshRequest;
const resend = { attempt: 1 } as MeshRequest;
const endpoints = (weights: number[]) =>
  weights.map((weight, i) => new Endpoint({ url: `http://127.0.0.1:${8000 + i}`, weight }, 0));

function setup(weightOf: PickerContext["weightOf"] = (e) => e.weight) {
  const clock = fakeClock();
  const picker = random().create({ clock, random: seededRandom(5), load: new LoadTracker(), weightOf });
  return { clock, picker };
}

function shares(pick: () => Endpoint, n: number, picks: number): number[] {
  const counts = new Array<number>(n).fill(0);
  for (let i = 0; i < picks; i++) {
    const port = pick().port - 8000;
    counts[port] = (counts[port] as number) + 1;
  }
  return counts.map((c) => c / picks);
}

describe("random", () => {
  it("spreads evenly with equal weights (each of 10 within ±5 % of its share)", () => {
    const { picker } = setup();
    const ready = endpoints(new Array<number>(10).fill(1));
    for (const share of shares(() => picker.pick(ready, first), 10, 100_000)) {
      expect(share).toBeGreaterThan(0.095);
      expect(share).toBeLessThan(0.105);
    }
  });

  it("picks in proportion to weight: weight 2 gets twice the share", () => {
    const { picker } = setup();
    const ready = endpoints([1, 2, 1]);
    const [a, b, c] = shares(() => picker.pick(ready, first), 3, 100_000) as [number, number, number];
    expect(b / a).toBeGreaterThan(1.9);
    expect(b / a).toBeLessThan(2.1);
    expect(b / c).toBeGreaterThan(1.9);
    expect(b / c).toBeLessThan(2.1);
  });

  it("never picks weight 0, unless every weight is 0", () => {
    const { picker } = setup();
    const ready = endpoints([0, 1, 1]);
    for (let i = 0; i < 1000; i++) expect(picker.pick(ready, first).port).not.toBe(8000);
    const zeros = endpoints([0, 0]);
    expect(new Set(Array.from({ length: 100 }, () => picker.pick(zeros, first).port)).size).toBe(2);
  });

  it("follows a slow-start ramp, re-reading weights at most once a second", () => {
    let ramp = 0.1;
    const { picker, clock } = setup((e) => (e.port === 8000 ? e.weight * ramp : e.weight));
    const ready = endpoints([1, 1]);
    const before = shares(() => picker.pick(ready, first), 2, 20_000)[0] as number;
    expect(before).toBeCloseTo(0.1 / 1.1, 1);
    ramp = 1;
    expect(shares(() => picker.pick(ready, first), 2, 20_000)[0]).toBeCloseTo(before, 1);
    clock.advance(1000);
    expect(shares(() => picker.pick(ready, first), 2, 20_000)[0]).toBeCloseTo(0.5, 1);
  });

  it("draws a resend from the endpoints not tried, by weight", () => {
    const { picker } = setup();
    const ready = endpoints([1, 2, 1, 4]);
    picker.pick(ready, first);
    const untried = ready.slice(1);
    const counts = shares(() => picker.pick(untried, resend), 4, 70_000);
    expect(counts[0]).toBe(0);
    expect((counts[3] as number) / (counts[1] as number)).toBeCloseTo(2, 0);
  });

  it("searches cumulative weights for the first sum above the target", () => {
    const sums = cumulativeWeights(new Float64Array([1, 0, 2, 1])) as Float64Array;
    expect([...sums]).toEqual([1, 1, 3, 4]);
    expect(searchCumulative(sums, 0)).toBe(0);
    expect(searchCumulative(sums, 0.999)).toBe(0);
    // The weight-0 entry has an empty range and is skipped.
    expect(searchCumulative(sums, 1)).toBe(2);
    expect(searchCumulative(sums, 3.999)).toBe(3);
    expect(cumulativeWeights(new Float64Array([2, 2, 2]))).toBeNull();
  });

  it("rejects bad options, naming them", () => {
    expect(() => random({ weightRefreshMs: 0 })).toThrow(InvalidOptionsError);
    expect(() => random({ weightRefreshMs: 0 })).toThrow(/balancer\.weightRefreshMs/);
    expect(() => random({ refreshMs: 5 } as never)).toThrow(/unknown option balancer\.refreshMs/);
  });
});

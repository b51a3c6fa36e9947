import { describe, expect, it } from "vitest";
import { seededRandom } from "../core/clock.js";
import { Endpoint } from "../core/endpoint.js";
import { InvalidOptionsError } from "../core/errors.js";
import type { MeshRequest } from "../core/types.js";
import { fakeClock } from "../testing/fake-clock.js";
import { EdfScheduler } from "./edf.js";
import { LoadTracker } from "./load.js";
import type { PickerContext } from "./picker.js";
import { roundRobin } from "./round-robin.js";

const first = { attempt: 0 } as MeshRequest;
const resend = { attempt: 1 } as MeshRequest;
const endpoints = (weights: number[]) =>
  weights.map((weight, i) => new Endpoint({ url: `http://127.0.0.1:${8000 + i}`, weight }, 0));

function setup(weightOf: PickerContext["weightOf"] = (e) => e.weight) {
  const clock = fakeClock();
  const picker = roundRobin().create({ clock, random: seededRandom(3), load: new LoadTracker(), weightOf });
  return { clock, picker };
}

const ports = (picks: Endpoint[]) => picks.map((e) => e.port - 8000);

describe("roundRobin", () => {
  it("visits each endpoint in turn when weights are equal", () => {
    const { picker } = setup();
    const ready = endpoints([1, 1, 1]);
    expect(ports(Array.from({ length: 7 }, () => picker.pick(ready, first)))).toEqual([0, 1, 2, 0, 1, 2, 0]);
  });

  it("gives weight 3 three picks for each pick of weight 1, interleaved (EDF)", () => {
    const { picker } = setup();
    const ready = endpoints([3, 1, 2]);
    const picks = ports(Array.from({ length: 600 }, () => picker.pick(ready, first)));
    expect(picks.filter((p) => p === 0)).toHaveLength(300);
    expect(picks.filter((p) => p === 1)).toHaveLength(100);
    expect(picks.filter((p) => p === 2)).toHaveLength(200);
    // Interleaved: in every window of 6 picks, each endpoint gets exactly its share.
    for (let at = 0; at < 600; at += 6) {
      const window = picks.slice(at, at + 6);
      expect(window.filter((p) => p === 0)).toHaveLength(3);
      expect(window.filter((p) => p === 1)).toHaveLength(1);
    }
    expect(picks.slice(0, 6)).toEqual([0, 2, 0, 1, 2, 0]);
  });

  it("follows a slow-start ramp, rebuilding the schedule at most once a second", () => {
    let ramp = 0.25;
    const { picker, clock } = setup((e) => (e.port === 8000 ? e.weight * ramp : e.weight));
    const ready = endpoints([1, 1]);
    const share = () =>
      ports(Array.from({ length: 100 }, () => picker.pick(ready, first))).filter((p) => p === 0).length;
    expect(share()).toBe(20);
    ramp = 1;
    expect(share()).toBe(20);
    clock.advance(1000);
    expect(share()).toBe(50);
  });

  it("sends a resend to an endpoint not tried yet", () => {
    const { picker } = setup();
    const ready = endpoints([1, 1, 1, 1]);
    picker.pick(ready, first);
    const untried = ready.filter((e) => e.port !== 8001);
    for (let i = 0; i < 20; i++) expect(picker.pick(untried, resend).port).not.toBe(8001);
    const weighted = endpoints([1, 5, 1]);
    picker.pick(weighted, first);
    for (let i = 0; i < 20; i++)
      expect(picker.pick([weighted[0] as Endpoint, weighted[2] as Endpoint], resend).port).not.toBe(8001);
  });

  it("rejects bad options, naming them", () => {
    expect(() => roundRobin({ weightRefreshMs: -5 })).toThrow(InvalidOptionsError);
    expect(() => roundRobin({ weightRefreshMs: -5 })).toThrow(/balancer\.weightRefreshMs/);
  });
});

describe("EdfScheduler", () => {
  it("picks by earliest deadline, ties in index order, and skips weight 0", () => {
    const edf = new EdfScheduler(new Float64Array([1, 0, 1, 2]));
    expect(edf.size).toBe(3);
    const picks = Array.from({ length: 8 }, () => edf.next());
    expect(picks).toEqual([3, 0, 2, 3, 3, 0, 2, 3]);
    expect(new EdfScheduler(new Float64Array([0])).next()).toBe(-1);
  });

  it("stays exact over many picks with fractional weights", () => {
    const edf = new EdfScheduler(new Float64Array([0.1, 0.3, 0.6]));
    const counts = [0, 0, 0];
    for (let i = 0; i < 100_000; i++) {
      const at = edf.next();
      counts[at] = (counts[at] as number) + 1;
    }
    expect(counts.map((c) => Math.round(c / 1000))).toEqual([10, 30, 60]);
  });
});

import { describe, expect, it } from "vitest";
import {
  endpoints,
  key,
  KEYS,
  mapping,
  moved,
  N,
  pickerOf,
  request,
  shares,
} from "../../test/helpers/consistent-hash.js";
import { seededRandom } from "../core/clock.js";
import { Endpoint } from "../core/endpoint.js";
import { fakeClock } from "../testing/fake-clock.js";
import { LoadTracker } from "./load.js";
import { invalidOption } from "../../test/helpers/options.js";
import { buildMaglevTable, isPrime, maglev, type MaglevOptions } from "./maglev.js";
import type { Picker, PickerContext } from "./picker.js";

function create(options: Partial<MaglevOptions> = {}, weightOf?: PickerContext["weightOf"]): Picker {
  return pickerOf(maglev({ key, ...options }), 17, weightOf);
}

describe("maglev", () => {
  it("sends the same key to the same endpoint, in every client, whatever the order of ready", () => {
    const ready = endpoints(N);
    const a = mapping(create(), ready);
    expect(mapping(create(), ready)).toEqual(a);
    expect(mapping(create(), [...ready].reverse())).toEqual(a);
  });

  it("moves about 1/N of the keys when one of 10 leaves, and very few of the others' (measured)", () => {
    const ready = endpoints(N);
    const before = mapping(create(), ready);
    let total = 0;
    let totalOthers = 0;
    for (const gone of ready) {
      const { fraction, othersFraction } = moved(
        before,
        mapping(
          create(),
          ready.filter((e) => e !== gone),
        ),
        gone.url,
      );
      expect(fraction).toBeLessThanOrEqual(1.5 / N);
      // Maglev is not minimally disruptive: with the leaver gone, the survivors claim slots on
      // different turns, so a few of their slots change hands (Maglev puts balance first). How many
      // shrinks as the table grows against the number of endpoints (here 6 553 slots each):
      // measured 0.22–0.32 % of the survivors' keys (0.01–0.08 % with 655 373 slots). The bound,
      // 1 %, is three times the worst measured, and a tenth of what Envoy's ring sizing moves
      // (8 %, see ring-hash.ts).
      expect(othersFraction).toBeLessThanOrEqual(0.01);
      total += fraction;
      totalOthers += othersFraction;
    }
    // Measured: mean 10.2 % of all keys (ideal 10 %), 0.26 % of the survivors' keys.
    expect(total / N).toBeLessThan(0.11);
    expect(totalOthers / N).toBeLessThan(0.005);
  });

  it("moves keys mostly to a new endpoint when one joins", () => {
    const ready = endpoints(N + 1);
    const before = mapping(create(), ready.slice(0, N));
    const after = mapping(create(), ready);
    const joined = (ready[N] as Endpoint).url;
    expect(moved(before, after).fraction).toBeLessThanOrEqual(1.5 / (N + 1));
    let elsewhere = 0;
    for (let i = 0; i < KEYS.length; i++) if (before[i] !== after[i] && after[i] !== joined) elsewhere++;
    expect(elsewhere / KEYS.length).toBeLessThan(0.01);
  });

  it("gives every endpoint of equal weight the same number of slots, ±1", () => {
    const ready = endpoints(N);
    const table = buildMaglevTable(ready, new Float64Array(N).fill(1), 65_537);
    const slots = new Array<number>(N).fill(0);
    for (const i of table.slots) slots[i] = (slots[i] as number) + 1;
    expect(Math.max(...slots) - Math.min(...slots)).toBeLessThanOrEqual(1);
    expect(slots.reduce((s, c) => s + c, 0)).toBe(65_537);
  });

  it("spreads keys within ±8 % of each endpoint's fair share (the slots are even; the rest is sampling)", () => {
    // Measured: 4.6 %. With 1 000 keys per endpoint the sampling noise alone is ±3 % (one σ).
    const fair = KEYS.length / N;
    for (const count of shares(mapping(create(), endpoints(N))).values())
      expect(Math.abs(count - fair) / fair).toBeLessThan(0.08);
  });

  it("gives weight 2 twice the slots and about twice the keys", () => {
    const ready = endpoints(N, (i) => (i === 0 ? 2 : 1));
    const table = buildMaglevTable(
      ready,
      new Float64Array(N).map((_, i) => (i === 0 ? 2 : 1)),
      65_537,
    );
    const heavySlots = table.slots.filter((i) => i === 0).length;
    expect(heavySlots / ((65_537 - heavySlots) / (N - 1))).toBeCloseTo(2, 2);
    const counts = shares(mapping(create(), ready));
    const heavy = counts.get((ready[0] as Endpoint).url) as number;
    const ratio = heavy / ((KEYS.length - heavy) / (N - 1));
    expect(ratio).toBeGreaterThan(1.8);
    expect(ratio).toBeLessThan(2.2);
  });

  it("gives weight 0 no slots", () => {
    const table = buildMaglevTable(endpoints(3), new Float64Array([1, 0, 1]), 101);
    expect(table.slots.includes(1)).toBe(false);
    expect(table.slots.includes(-1)).toBe(false);
  });

  it("follows a slow-start ramp, rebuilding at most once a second", () => {
    const clock = fakeClock();
    const fresh = "http://10.0.0.1:8080";
    const weightOf: PickerContext["weightOf"] = (e, now) =>
      e.url === fresh ? e.weight * Math.min(1, 0.1 + now / 10_000) : e.weight;
    const picker = maglev({ key }).create({ clock, random: seededRandom(1), load: new LoadTracker(), weightOf });
    const ready = endpoints(N);
    const before = shares(mapping(picker, ready)).get(fresh) as number;
    expect(before).toBeLessThan(KEYS.length / N / 4);
    clock.advance(500);
    expect(shares(mapping(picker, ready)).get(fresh)).toBe(before);
    clock.advance(9_500);
    expect(mapping(picker, ready)).toEqual(mapping(create(), ready));
  });

  it("sends a resend to an endpoint not tried yet, the same one each time for a key", () => {
    const ready = endpoints(N);
    const picker = create();
    for (const k of KEYS.slice(0, 500)) {
      const tried = picker.pick(ready, request(k));
      const untried = ready.filter((e) => e !== tried);
      const second = picker.pick(untried, request(k, 1));
      expect(second).not.toBe(tried);
      expect(
        picker.pick(
          ready.filter((e) => e !== tried),
          request(k, 1),
        ),
      ).toBe(second);
    }
  });

  it("reads a random slot when the request has no key", () => {
    const picker = create();
    const ready = endpoints(4);
    expect(new Set(Array.from({ length: 200 }, () => picker.pick(ready, request(undefined)).url)).size).toBe(4);
  });

  it("rejects bad options, naming them", () => {
    expect(invalidOption(() => maglev({} as never))).toBe("balancer.key");
    expect(invalidOption(() => maglev({ key, tableSize: 65_536 }))).toBe("balancer.tableSize");
    expect(invalidOption(() => maglev({ key, tableSize: 1 }))).toBe("balancer.tableSize");
    expect(invalidOption(() => maglev({ key, tablesize: 7 } as never))).toBe("balancer.tablesize");
    expect(() => maglev({ key, tablesize: 7 } as never)).toThrow(/did you mean balancer\.tableSize/);
    expect(isPrime(65_537)).toBe(true);
    expect(isPrime(655_373)).toBe(true);
    expect(isPrime(65_535)).toBe(false);
  });
});

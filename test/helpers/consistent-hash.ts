/**
 * What the consistent-hashing tests (ring hash, Maglev) share: keyed requests, a picker built as
 * a client builds it, the key → endpoint mapping and how much of it moves.
 */
import { seededRandom } from "../../src/core/clock.js";
import { Endpoint } from "../../src/core/endpoint.js";
import type { MeshRequest } from "../../src/core/types.js";
import { LoadTracker } from "../../src/balance/load.js";
import type { Balancer, Picker, PickerContext } from "../../src/balance/picker.js";
import { fakeClock } from "../../src/testing/fake-clock.js";

export const N = 10;
export const KEYS = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);

export const request = (user: string | undefined, attempt = 0) =>
  ({ attempt, headers: user === undefined ? {} : { "x-user": user } }) as unknown as MeshRequest;

export const key = (req: MeshRequest) => req.headers["x-user"] as string | undefined;

export const endpoints = (n: number, weight: (i: number) => number = () => 1) =>
  Array.from({ length: n }, (_, i) => new Endpoint({ url: `http://10.0.0.${i + 1}:8080`, weight: weight(i) }, 0));

/** A picker from `balancer`, with a seeded random and the given weights. */
export function pickerOf(
  balancer: Balancer,
  seed: number,
  weightOf: PickerContext["weightOf"] = (e) => e.weight,
): Picker {
  return balancer.create({ clock: fakeClock(), random: seededRandom(seed), load: new LoadTracker(), weightOf });
}

/** The endpoint URL each of `KEYS` maps to. */
export const mapping = (picker: Picker, ready: readonly Endpoint[]) =>
  KEYS.map((k) => picker.pick(ready, request(k)).url);

/** Fraction of keys whose endpoint changed, and the same among keys that were not on `removed`. */
export function moved(before: string[], after: string[], removed?: string) {
  let all = 0;
  let stayed = 0;
  let others = 0;
  for (let i = 0; i < before.length; i++) {
    if (before[i] !== after[i]) all++;
    if (before[i] !== removed) {
      others++;
      if (before[i] !== after[i]) stayed++;
    }
  }
  return { fraction: all / before.length, othersFraction: stayed / others };
}

/** How many of `urls` went to each URL. */
export function shares(urls: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const url of urls) counts.set(url, (counts.get(url) ?? 0) + 1);
  return counts;
}

/**
 * What the structure-building pickers (`random`, weighted `roundRobin`, `ringHash`, `maglev`)
 * share: weights read through `weightOf` (discovery weight × slow-start ramp), and a cache of
 * the structure built for a `ready` array.
 *
 * Why a cache keyed by array identity: the balance layer hands pickers the same `ready` array
 * until the endpoint set or a state changes (`EndpointSet.refresh`), so a changed identity is a
 * changed set, detected in O(1). Two arrays are kept, not one, because zone-aware routing
 * alternates between two stable arrays (the local zone's, and every ready endpoint) when the
 * local zone hovers at its saturation bound; one slot would rebuild on every flip.
 *
 * Why weights are re-read on a timer: during a slow-start ramp `weightOf` changes while the
 * array does not. A structure is "settled" when every endpoint's `weightOf` equals its discovery
 * `weight` (no ramp in progress); an unsettled one re-reads its weights at most every
 * `weightRefreshMs` and rebuilds only if one of them moved. A settled structure costs no clock
 * read per pick. `Endpoint.weight` is read only to tell whether a ramp is running, never as the
 * weight itself.
 *
 * Why resends do not build: on a retry or a hedge the layer hands a fresh copy of `ready`
 * without the endpoints already tried. Caching it would evict the real set's structure for a
 * one-off array, so pickers serve resends from the structure they have (or an O(n) scan) — see
 * `isResend`.
 */
import type { Endpoint } from "../core/endpoint.js";
import type { MeshRequest } from "../core/types.js";
import type { PickerContext } from "./picker.js";

/** Default for `weightRefreshMs`: how often a ramping weight is re-read, ms. */
export const DEFAULT_WEIGHT_REFRESH_MS = 1000;

/** A usable weight: a positive finite number, anything else counts as 0 (never picked). */
export function usableWeight(weight: number): number {
  return weight > 0 && weight < Number.POSITIVE_INFINITY ? weight : 0;
}

/**
 * Reads every endpoint's weight at `nowMs` into `out`; returns true when no weight is ramping.
 * When every weight is 0 (or unusable) all are read as 1: an endpoint set is never unpickable.
 */
export function readWeights(
  ready: readonly Endpoint[],
  context: PickerContext,
  nowMs: number,
  out: Float64Array,
): boolean {
  let settled = true;
  let total = 0;
  for (let i = 0; i < ready.length; i++) {
    const endpoint = ready[i] as Endpoint;
    const raw = context.weightOf(endpoint, nowMs);
    if (raw !== endpoint.weight && !(Number.isNaN(raw) && Number.isNaN(endpoint.weight))) settled = false;
    const w = usableWeight(raw);
    out[i] = w;
    total += w;
  }
  if (total === 0) out.fill(1, 0, ready.length);
  return settled;
}

/** True for a retry or a hedge: the layer passes a one-off array without the endpoints tried. */
export function isResend(req: MeshRequest): boolean {
  return req.attempt > 0;
}

/**
 * A weighted draw by scanning `ready`: O(n), no allocation. Used for arrays nothing was built
 * for (resends). Equal weights take the fast path of a uniform index.
 */
export function pickByScan(ready: readonly Endpoint[], context: PickerContext, nowMs: number): Endpoint {
  const n = ready.length;
  if (n === 1) return ready[0] as Endpoint;
  let total = 0;
  let first = -1;
  let equal = true;
  for (let i = 0; i < n; i++) {
    const w = usableWeight(context.weightOf(ready[i] as Endpoint, nowMs));
    if (first < 0) first = w;
    else if (w !== first) equal = false;
    total += w;
  }
  if (equal || total === 0) return ready[Math.floor(context.random() * n)] as Endpoint;
  let target = context.random() * total;
  for (let i = 0; i < n; i++) {
    const w = usableWeight(context.weightOf(ready[i] as Endpoint, nowMs));
    if (target < w) return ready[i] as Endpoint;
    target -= w;
  }
  // Rounding left a sliver past the last weight: the last usable endpoint takes it.
  for (let i = n - 1; i >= 0; i--)
    if (usableWeight(context.weightOf(ready[i] as Endpoint, nowMs)) > 0) return ready[i] as Endpoint;
  return ready[n - 1] as Endpoint;
}

interface Slot<T> {
  ready: readonly Endpoint[] | null;
  value: T | undefined;
  weights: Float64Array;
  settled: boolean;
  checkedAt: number;
}

const emptySlot = <T>(): Slot<T> => ({
  ready: null,
  value: undefined,
  weights: new Float64Array(0),
  settled: true,
  checkedAt: 0,
});

/**
 * Builds `T` from `(ready, weights)` and keeps it for the two most recent `ready` arrays.
 * `build` receives the weights by index of `ready` (never all zero); `T` must not include
 * `undefined` (it means "not cached").
 * @param refreshMs while a weight is ramping, re-read weights at most this often (pickers pass
 *   `weightRefreshMs`, default 1 000)
 * @example const cache = new BuildCache(context, 1000, (ready, weights) => cumulativeWeights(weights));
 *          const sums = cache.get(ready); // built once per ready array
 */
export class BuildCache<T> {
  readonly #context: PickerContext;
  readonly #refreshMs: number;
  readonly #build: (ready: readonly Endpoint[], weights: Float64Array) => T;
  #first: Slot<T> = emptySlot();
  #second: Slot<T> = emptySlot();
  /** Structures built so far (for tests and the snapshot). */
  builds = 0;

  constructor(
    context: PickerContext,
    refreshMs: number,
    build: (ready: readonly Endpoint[], weights: Float64Array) => T,
  ) {
    this.#context = context;
    this.#refreshMs = refreshMs;
    this.#build = build;
  }

  /** The structure for `ready`, built if neither slot holds it. */
  get(ready: readonly Endpoint[]): T {
    const cached = this.peek(ready);
    return cached !== undefined ? cached : this.#fill(ready);
  }

  /** The structure for `ready` if one is cached (refreshing ramping weights); never builds for a new array. */
  peek(ready: readonly Endpoint[]): T | undefined {
    let slot = this.#first;
    if (slot.ready !== ready) {
      if (this.#second.ready !== ready) return undefined;
      slot = this.#second;
      this.#second = this.#first;
      this.#first = slot;
    }
    if (!slot.settled) this.#refresh(slot);
    return slot.value;
  }

  /** The most recently used structure, for a resend's one-off array; undefined before any pick. */
  get recent(): T | undefined {
    return this.#first.value;
  }

  #fill(ready: readonly Endpoint[]): T {
    // The least recently used slot is rebuilt and becomes the first.
    const slot = this.#second;
    this.#second = this.#first;
    this.#first = slot;
    const now = this.#context.clock.now();
    slot.ready = ready;
    slot.weights = new Float64Array(ready.length);
    slot.settled = readWeights(ready, this.#context, now, slot.weights);
    slot.checkedAt = now;
    slot.value = this.#build(ready, slot.weights);
    this.builds++;
    return slot.value;
  }

  #refresh(slot: Slot<T>): void {
    const now = this.#context.clock.now();
    if (now - slot.checkedAt < this.#refreshMs) return;
    const ready = slot.ready as readonly Endpoint[];
    const weights = new Float64Array(ready.length);
    slot.settled = readWeights(ready, this.#context, now, weights);
    slot.checkedAt = now;
    let changed = false;
    for (let i = 0; i < weights.length; i++) {
      if (weights[i] !== slot.weights[i]) {
        changed = true;
        break;
      }
    }
    if (!changed) return;
    slot.weights = weights;
    slot.value = this.#build(ready, weights);
    this.builds++;
  }
}

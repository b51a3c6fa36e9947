/**
 * Subsets of a client's endpoints, selected by discovery metadata (`{ version: "v2" }`) for a
 * route's backend — Envoy's subset load balancer. Each subset has its own ready list, derived
 * from the set's ready list (so health, ejection, breakers and panic mode apply as they do to the
 * whole set) and rebuilt only when that list changes, and its own picker, because pickers keep
 * state per ready list (a ring, a schedule, a cursor). The load estimates are per endpoint and
 * shared, so an endpoint in two subsets is weighed the same in both.
 *
 * Keyed by the subset's canonical key, so a new config version that names the same subset keeps
 * its picker; bounded (64), the oldest subset goes first.
 */
import type { Endpoint, EndpointSet } from "../core/endpoint.js";
import { inSubset, type EndpointSubset } from "../core/route.js";
import type { Picker } from "./picker.js";

interface SubsetState {
  /** The set's ready list this one was derived from: a different one means rebuild. */
  from: readonly Endpoint[];
  ready: readonly Endpoint[];
  readonly picker: Picker;
}

/** Subsets kept at once; a route table names a handful. */
const MAX_SUBSETS = 64;

export class Subsets {
  readonly #endpoints: EndpointSet;
  readonly #createPicker: () => Picker;
  readonly #states = new Map<string, SubsetState>();

  constructor(endpoints: EndpointSet, createPicker: () => Picker) {
    this.#endpoints = endpoints;
    this.#createPicker = createPicker;
  }

  /** The subset's ready endpoints now, and its picker. */
  get(subset: EndpointSubset): SubsetState {
    const ready = this.#endpoints.ready;
    let state = this.#states.get(subset.key);
    if (state === undefined) {
      if (this.#states.size >= MAX_SUBSETS) this.#states.delete(this.#states.keys().next().value as string);
      state = { from: ready, ready: ready.filter((e) => inSubset(e, subset)), picker: this.#createPicker() };
      this.#states.set(subset.key, state);
    } else if (state.from !== ready) {
      state.from = ready;
      const next = ready.filter((e) => inSubset(e, subset));
      // The same members keep the same array, so the picker's structures stay valid.
      if (!sameMembers(next, state.ready)) state.ready = next;
    }
    return state;
  }

  /** How many endpoints of the whole set (ready or not) are in the subset: for the error when none is ready. */
  count(subset: EndpointSubset): number {
    return this.#endpoints.all.filter((e) => e.state !== "draining" && inSubset(e, subset)).length;
  }
}

function sameMembers(a: readonly Endpoint[], b: readonly Endpoint[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

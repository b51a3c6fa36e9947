/**
 * What a balancer is: a description (`p2cEwma()`, `roundRobin()`) that makes one picker per
 * client, because pickers keep state (a cursor, a ring) that clients must not share.
 */
import type { Clock, Random } from "../core/clock.js";
import type { Endpoint } from "../core/endpoint.js";
import type { MeshRequest } from "../core/types.js";
import type { LoadTracker } from "./load.js";

export interface PickerContext {
  readonly clock: Clock;
  readonly random: Random;
  readonly load: LoadTracker;
  /**
   * The endpoint's weight now: its discovery weight times its slow-start ramp (a new or returning
   * endpoint starts at a small share). Pickers that can respect weights read this, not `weight`.
   */
  readonly weightOf: (endpoint: Endpoint, nowMs: number) => number;
}

export interface Picker {
  /**
   * Chooses among `ready` (never empty when called). `nowMs`, when given, is the clock's time,
   * read once by the balance layer for the pick and the attempt's start (the picker need not read
   * the clock again).
   */
  pick(ready: readonly Endpoint[], req: MeshRequest, nowMs?: number): Endpoint;
}

export interface Balancer {
  readonly name: string;
  /** Time constant of the load estimate this balancer wants, ms (default 10 000). */
  readonly decayMs?: number;
  create(context: PickerContext): Picker;
}

/**
 * The observed half of weft's metrics: client state read at collection time, never per call.
 *
 * One batch callback per meter reads every live client's snapshot once and sums clients of the
 * same service. An asynchronous instrument keeps one value per attribute set per collection, and
 * the SDK turns cumulative observations into deltas against the last one: two clients observing
 * `{ weft.service: "catalog" }` separately would overwrite each other and make counters climb
 * with no call made. Summed, two `catalog` clients (two meshes, or a client made twice) read as
 * one service, as their synchronous counters already do. Levels sum too (the concurrency limit
 * and the retry tokens of a service are those of all its clients), except staleness: 1 when any
 * client's discovery is stale.
 *
 * A level that stops being observed (an endpoint gone, the last client of a service closed) is
 * reported once more as 0 before it goes: the JS SDK (2.x) keeps exporting the last cumulative
 * value of an attribute set its callback no longer observes, which would leave a closed client's
 * endpoints on the charts for good. Counters (calls, timeouts) keep their total, as counters do.
 */
import type { Attributes, BatchObservableResult, Meter, Observable } from "@opentelemetry/api";
import type { BreakerState, EndpointHealth } from "../core/endpoint.js";
import type { Disposer } from "../core/types.js";
import { serverAttributes, type WeftInstruments } from "./metrics-instruments.js";

/** What the observed metrics read: the parts of `client.snapshot()` they need (a `ClientSnapshot` fits). */
export interface MetricsSnapshot {
  readonly counters: {
    readonly inflight: number;
    readonly successes: number;
    readonly failures: number;
    readonly ignorable: number;
    readonly timeouts: number;
  };
  readonly endpoints: readonly {
    readonly url: string;
    readonly state: EndpointHealth;
    readonly inflight: number;
    readonly breaker: BreakerState;
  }[];
  readonly limits: { readonly concurrency: { readonly queued: number; readonly limit: number } | null };
  readonly retryBudget: number | null;
  readonly discovery: { readonly stale: boolean };
}

/** One live client, as the meter's callback sees it. */
export interface SnapshotSource {
  readonly service: string;
  readonly snapshot: () => MetricsSnapshot;
}

/** Every endpoint state, so a state nobody is in reports 0 instead of vanishing from charts. */
const ENDPOINT_STATES: Readonly<Record<EndpointHealth, 0>> = { healthy: 0, probing: 0, ejected: 0, draining: 0 };

const observers = new WeakMap<Meter, SnapshotObserver>();

/** The observer of `meter`'s clients, made on first use. */
export function observerFor(meter: Meter, instruments: WeftInstruments): SnapshotObserver {
  let observer = observers.get(meter);
  if (observer === undefined) {
    observer = new SnapshotObserver(meter, instruments);
    observers.set(meter, observer);
  }
  return observer;
}

/**
 * The clients observed through one meter. Its batch callback is registered while there are
 * clients, and for one more collection after the last leaves, to report its levels as 0.
 */
export class SnapshotObserver {
  readonly #meter: Meter;
  readonly #instruments: WeftInstruments;
  readonly #observables: Observable[];
  /** Monotonic: their totals stay when a series goes; every other observable is a level. */
  readonly #counters: ReadonlySet<Observable>;
  readonly #sources = new Set<SnapshotSource>();
  /** The levels reported by the last collection, by key. */
  #levels = new Map<string, Observation>();
  #registered = false;
  readonly #callback = (result: BatchObservableResult): void => this.#observe(result);

  constructor(meter: Meter, instruments: WeftInstruments) {
    this.#meter = meter;
    this.#instruments = instruments;
    const i = instruments;
    this.#observables = [
      i.calls,
      i.timeouts,
      i.inflight,
      i.endpointInflight,
      i.queueDepth,
      i.concurrencyLimit,
      i.endpoints,
      i.breakersOpen,
      i.retryBudget,
      i.discoveryStale,
    ];
    this.#counters = new Set([i.calls, i.timeouts]);
  }

  /** Observes `source` from the next collection on, until the disposer runs. */
  add(source: SnapshotSource): Disposer {
    if (!this.#registered) {
      this.#meter.addBatchObservableCallback(this.#callback, this.#observables);
      this.#registered = true;
    }
    this.#sources.add(source);
    return () => {
      // Nothing reported yet: nothing to retire, so the callback can go now.
      if (this.#sources.delete(source) && this.#sources.size === 0 && this.#levels.size === 0) this.#unregister();
    };
  }

  #unregister(): void {
    if (!this.#registered) return;
    this.#registered = false;
    this.#meter.removeBatchObservableCallback(this.#callback, this.#observables);
  }

  #observe(result: BatchObservableResult): void {
    const now = new Observations();
    for (const source of this.#sources) collectInto(now, this.#instruments, source.service, source.snapshot());
    const levels = new Map<string, Observation>();
    for (const [key, observation] of now.entries())
      if (!this.#counters.has(observation.observable)) levels.set(key, observation);
    for (const [key, gone] of this.#levels) if (!levels.has(key)) now.retire(key, gone);
    this.#levels = levels;
    now.report(result);
    // The last client has left and its levels went out as 0: stop being called. Deferred, as the
    // SDK is iterating its callbacks now.
    if (this.#sources.size === 0) {
      queueMicrotask(() => {
        if (this.#sources.size === 0) this.#unregister();
      });
    }
  }
}

function collectInto(sums: Observations, i: WeftInstruments, service: string, snap: MetricsSnapshot): void {
  const counters = snap.counters;
  // The client's own counters: the classifier's verdicts, as the attempt metrics have them.
  sums.add(
    i.calls,
    [service, "success"],
    () => ({ "weft.service": service, "weft.outcome": "success" }),
    counters.successes,
  );
  sums.add(
    i.calls,
    [service, "failure"],
    () => ({ "weft.service": service, "weft.outcome": "failure" }),
    counters.failures,
  );
  sums.add(
    i.calls,
    [service, "ignorable"],
    () => ({ "weft.service": service, "weft.outcome": "ignorable" }),
    counters.ignorable,
  );
  const base = (): Attributes => ({ "weft.service": service });
  sums.add(i.timeouts, [service], base, counters.timeouts);
  sums.add(i.inflight, [service], base, counters.inflight);
  const byState: Record<string, number> = { ...ENDPOINT_STATES };
  let open = 0;
  for (const endpoint of snap.endpoints) {
    byState[endpoint.state] = (byState[endpoint.state] ?? 0) + 1;
    if (endpoint.breaker === "open") open++;
    const server = serverAttributes(endpoint.url);
    sums.add(
      i.endpointInflight,
      [service, server["server.address"], server["server.port"]],
      () => ({ ...server, "weft.service": service }),
      endpoint.inflight,
    );
  }
  for (const state in byState) {
    sums.add(
      i.endpoints,
      [service, state],
      () => ({ "weft.service": service, "weft.endpoint.state": state }),
      byState[state] ?? 0,
    );
  }
  sums.add(i.breakersOpen, [service], base, open);
  const concurrency = snap.limits.concurrency;
  if (concurrency !== null) {
    sums.add(i.queueDepth, [service], base, concurrency.queued);
    sums.add(i.concurrencyLimit, [service], base, concurrency.limit);
  }
  if (snap.retryBudget !== null) sums.add(i.retryBudget, [service], base, snap.retryBudget);
  sums.add(i.discoveryStale, [service], base, snap.discovery.stale ? 1 : 0, Math.max);
}

interface Observation {
  readonly observable: Observable;
  readonly attributes: Attributes;
  value: number;
}

/** Observations of one collection, one per instrument and attribute set, combined as they come. */
/**
 * One id per instrument for the life of the process: a series' key must not depend on the order
 * in which a collection first meets the instruments (that order changes when a client gains its
 * first endpoint or closes), or live series would be taken for gone and reported as 0.
 */
const observableIds = new WeakMap<Observable, number>();
let nextObservableId = 0;

class Observations {
  readonly #byKey = new Map<string, Observation>();

  add(
    observable: Observable,
    key: readonly (string | number)[],
    attributes: () => Attributes,
    value: number,
    combine: (a: number, b: number) => number = sum,
  ): void {
    let id = observableIds.get(observable);
    if (id === undefined) observableIds.set(observable, (id = nextObservableId++));
    const fullKey = `${id}:${JSON.stringify(key)}`;
    const found = this.#byKey.get(fullKey);
    if (found === undefined) this.#byKey.set(fullKey, { observable, attributes: attributes(), value });
    else found.value = combine(found.value, value);
  }

  entries(): IterableIterator<[string, Observation]> {
    return this.#byKey.entries();
  }

  /** Reports a series no client observes any more as 0, once. */
  retire(key: string, gone: Observation): void {
    this.#byKey.set(key, { observable: gone.observable, attributes: gone.attributes, value: 0 });
  }

  report(result: BatchObservableResult): void {
    for (const { observable, attributes, value } of this.#byKey.values()) result.observe(observable, value, attributes);
  }
}

function sum(a: number, b: number): number {
  return a + b;
}

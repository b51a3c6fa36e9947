/**
 * Per-endpoint circuit breakers. Netflix's Hystrix gave a client a breaker per dependency: when
 * the share of failing calls in a rolling window passes a threshold the breaker opens, calls fail
 * fast for a sleep window, then one trial call decides whether it closes again. opossum is that
 * model in Node.js, and weft uses it — but one breaker per *endpoint*, not per service: a service
 * with one bad replica out of ten has a 10 % failure rate, which should eject that replica, not
 * trip the whole service. An open breaker holds its endpoint out of the balancer's ready list: the
 * layer is an availability gate the endpoint set asks after `onStateChange` signals a transition.
 *
 * The layer sits between `balance` (which sets `req.endpoint`) and `attempt`, so a per-try timeout
 * counts as a failure of the endpoint it happened on.
 *
 * How opossum is used, and why (the calls themselves live in `opossum-adapter.ts`, the one file
 * that imports opossum, with a test that fails if an upgrade changes what it relies on):
 * - **What counts is the classifier's verdict.** The call runs outside opossum; when it settles,
 *   the verdict is reported by firing the breaker with an action that fails at once for a failure
 *   (`failure`/`retryable`, a 503 response included — the caller still gets the response) and
 *   succeeds for a success. An `ignorable` outcome (a 404, the caller's abort) is not reported at
 *   all: opossum has no "neither" — its `errorFilter` records a filtered error as a *success*,
 *   and every `fire` counts in the volume — so reporting after the fact is the only way to keep
 *   ignorable outcomes out of both counts. A failure is reported synchronously (the action
 *   throws), so a breaker that opens has opened before the caller sees the response.
 * - **Time is weft's clock.** opossum's `timeout` is off (`timeout: false`: weft times attempts
 *   itself, and opossum's would cost a timer per call). opossum moves open → half-open with a real
 *   `setTimeout`; weft does it on the injected clock instead: an instance that opens is shut down
 *   at once (which clears that timer), the deadline wheel schedules the end of the sleep window,
 *   and a fresh instance is then made in opossum's own half-open state (its documented `state`
 *   option) — whose first reported outcome closes or re-opens it. A breaker that closes therefore
 *   starts with a fresh window holding only its probes, as Hystrix resets its metrics on close,
 *   so the failures that opened it cannot re-open it at once.
 * - **Half-open admits `halfOpenProbes` calls in flight.** opossum alone lets exactly one `fire`
 *   through while half-open (`pendingClose`) and rejects the rest; since calls run outside opossum,
 *   weft counts the probes in flight itself. The first probe that succeeds or fails decides; an
 *   ignorable one frees its slot. A call beyond the bound, or one that reaches an open breaker (a
 *   race with the balancer's ready list), fails fast with `BreakerOpenError`.
 * - **No timer per breaker.** Every breaker of a layer slides its window on a shared
 *   `rotateBucketController`, all driven by one timer (`rotation.ts`); snapshots are off.
 * - **Bounded memory.** Breakers live in an `lru-cache` bounded by `maxEndpoints` (grown by
 *   doubling from 64 slots, `growing-lru.ts`, so a small client does not pay for 10,000 slots);
 *   eviction shuts the breaker down, and an evicted breaker that was not closed is reported
 *   closed, so its endpoint is not stranded out of the ready list with nothing left to re-test it.
 */
import { GrowingLru } from "./growing-lru.js";
import type { Classifier } from "../core/classifier.js";
import { isFailure } from "../core/classifier.js";
import type { Clock } from "../core/clock.js";
import type { AvailabilityGate, BreakerState, Endpoint } from "../core/endpoint.js";
import { BreakerOpenError } from "../core/errors.js";
import type { Layer, MeshRequest, MeshResponse, Service } from "../core/types.js";
import { wheelFor, type Scheduled } from "../core/wheel.js";
import type { BreakerConfig } from "./breaker-options.js";
import { breakerWindow, type BreakerWindow } from "./opossum-adapter.js";
import { BucketRotation } from "./rotation.js";

export interface BreakerLayerContext {
  readonly service: string;
  readonly config: BreakerConfig;
  readonly classifier: Classifier;
  readonly clock: Clock;
  /**
   * Called on every transition (closed→open, open→halfOpen, halfOpen→closed, halfOpen→open, and
   * open/halfOpen→closed when the breaker is evicted), after the layer's own state has changed.
   * The client refreshes its endpoint set here (which asks `isAvailable` again) and emits
   * `breakerStateChange`. A throw becomes a process warning; it never breaks a call.
   */
  onStateChange(endpoint: Endpoint, from: BreakerState, to: BreakerState): void;
}

export interface EndpointBreakerSnapshot {
  readonly url: string;
  readonly state: BreakerState;
  /** Successes plus failures reported in the rolling window (of the window that opened it, when open). */
  readonly windowCalls: number;
  readonly windowFailures: number;
  /** Probe calls in flight (half-open only). */
  readonly probesInFlight: number;
}

export interface BreakerSnapshot {
  /** Endpoints with a breaker (at most `maxEndpoints`). */
  readonly tracked: number;
  readonly open: number;
  readonly halfOpen: number;
  readonly endpoints: readonly EndpointBreakerSnapshot[];
}

/** Also the availability gate of the endpoint set: an open breaker holds its endpoint out, even in panic mode. */
export interface BreakerLayer extends AvailabilityGate {
  /** The layer, for the stack between `balance` and `attempt`. */
  readonly layer: Layer;
  /** The endpoint's breaker state (`closed` for an endpoint without one). */
  stateOf(endpoint: Endpoint): BreakerState;
  /** Drops the endpoint's breaker (discovery removed it). No transition is reported. */
  forget(endpoint: Endpoint): void;
  /** Plain JSON for the client's snapshot and the admin page. */
  snapshot(): BreakerSnapshot;
  /** Shuts every breaker down and stops the shared timer; later calls pass straight through. */
  close(): void;
}

class BreakerEntry {
  state: BreakerState = "closed";
  /**
   * The current window (an opossum instance, `opossum-adapter.ts`); replaced when the breaker
   * goes half-open. `null` until the endpoint's first failure: an instance weighs ~7 KB (its
   * window, 15 listeners, its options), and an endpoint that never fails never needs one.
   */
  breaker: BreakerWindow | null = null;
  /** Successes counted while there is no instance, since `quietSince`; they seed the instance. */
  quietSuccesses = 0;
  quietSince = 0;
  /** Probe calls in flight while half-open. */
  probes = 0;
  /** The end of the sleep window, while open. */
  reset: Scheduled | null = null;

  constructor(readonly endpoint: Endpoint) {}
}

/**
 * Per-endpoint circuit breakers as a layer, with the handles the client needs.
 * @example
 * const breakers = breakerLayer({ service, config, classifier, clock,
 *   onStateChange: () => endpoints.refresh(clock.now()) });
 * endpoints.addGate(breakers);
 * // in the stack, between balance and attempt: { role: "breaker", layer: breakers.layer }
 * // when the client closes: breakers.close()
 */
export function breakerLayer(context: BreakerLayerContext): BreakerLayer {
  const { service, config, classifier, clock, onStateChange } = context;
  const { halfOpenProbes, resetTimeoutMs } = config;
  const wheel = wheelFor(clock);
  const rotation = new BucketRotation(clock, config.rollingWindowMs, config.rollingBuckets);
  let closed = false;

  const notify = (endpoint: Endpoint, from: BreakerState, to: BreakerState): void => {
    try {
      onStateChange(endpoint, from, to);
    } catch (error) {
      process.emitWarning(`weft: a breaker onStateChange callback threw: ${String(error)}`, {
        code: "WEFT_LISTENER_ERROR",
      });
    }
  };

  const makeBreaker = (entry: BreakerEntry, halfOpen: boolean): BreakerWindow => {
    const window: BreakerWindow = breakerWindow({
      errorThresholdPercentage: config.errorThresholdPercentage,
      volumeThreshold: config.volumeThreshold,
      rollingWindowMs: config.rollingWindowMs,
      rollingBuckets: config.rollingBuckets,
      rotateBucketController: rotation.controller(), // arms the shared timer
      name: entry.endpoint.url,
      group: service,
      halfOpen,
      onOpen: () => onOpen(entry, window),
      onClose: () => onClose(entry, window),
    });
    return window;
  };
  /** The first failure of an endpoint with no instance: make one, seeded with the window's successes. */
  const makeSeeded = (entry: BreakerEntry): BreakerWindow => {
    const breaker = makeBreaker(entry, false);
    for (let i = 0; i < entry.quietSuccesses; i++) breaker.success();
    entry.quietSuccesses = 0;
    entry.breaker = breaker;
    return breaker;
  };

  // closed → open (the window passed the threshold) or halfOpen → open (a probe failed).
  const onOpen = (entry: BreakerEntry, breaker: BreakerWindow): void => {
    if (entry.breaker !== breaker || entry.state === "open") return;
    const from = entry.state;
    entry.state = "open";
    entry.probes = 0;
    // Shutting the window down stops it (its counts are kept for the snapshot) and clears
    // opossum's own reset timer; weft ends the sleep window on the injected clock.
    breaker.shutdown();
    entry.reset = wheel.schedule(clock.now() + resetTimeoutMs, () => toHalfOpen(entry));
    notify(entry.endpoint, from, "open");
  };

  // open → halfOpen, at the end of the sleep window: a fresh instance in opossum's half-open state.
  const toHalfOpen = (entry: BreakerEntry): void => {
    entry.reset = null;
    if (closed || entry.state !== "open") return;
    entry.breaker = makeBreaker(entry, true);
    entry.state = "halfOpen";
    entry.probes = 0;
    notify(entry.endpoint, "open", "halfOpen");
  };

  // halfOpen → closed: opossum closes a half-open breaker on its first reported success.
  const onClose = (entry: BreakerEntry, breaker: BreakerWindow): void => {
    if (entry.breaker !== breaker || entry.state === "closed") return;
    const from = entry.state;
    entry.state = "closed";
    entry.probes = 0;
    notify(entry.endpoint, from, "closed");
  };

  // Starts small and doubles up to maxEndpoints (lru-cache allocates its slots for `max` up front).
  const cache = new GrowingLru<Endpoint, BreakerEntry>(
    config.maxEndpoints,
    // After removal, so the cache is consistent if onStateChange reads it.
    (entry, endpoint, reason) => {
      entry.reset?.cancel();
      entry.reset = null;
      entry.breaker?.shutdown();
      const from = entry.state;
      entry.state = "closed";
      if (reason === "evict" && from !== "closed" && !closed) notify(endpoint, from, "closed");
    },
  );

  /**
   * Reports a settled call to the instance that admitted it — only while that instance still
   * counts: closed, or half-open and not yet decided (opossum's `pendingClose`). Outcomes of calls
   * that outlived their instance (it opened, was evicted, or another probe decided) are dropped.
   */
  const settle = (
    req: MeshRequest,
    entry: BreakerEntry,
    admittedBy: BreakerWindow | null,
    res: MeshResponse | undefined,
    error: unknown,
  ): void => {
    if (entry.breaker === admittedBy && entry.state === "halfOpen") entry.probes--;
    const outcome = classifier(req, res, error);
    // A shed (overloaded) answer says the endpoint is busy, not broken: neither a failure nor a success.
    if (outcome === "ignorable" || outcome === "overloaded") return;
    let breaker = admittedBy;
    if (breaker === null) {
      // Admitted while closed with no instance: count a success quietly; a failure makes one
      // (unless another failure already did, or the entry was evicted meanwhile).
      if (entry.state !== "closed" || cache.peek(entry.endpoint) !== entry) return;
      if (entry.breaker === null) {
        if (!isFailure(outcome)) {
          // The quiet window is 10 s wide: the call's start is a close enough "now" (no clock read).
          const now = req.call.startedAt >= 0 ? req.call.startedAt : clock.now();
          if (now - entry.quietSince >= config.rollingWindowMs) {
            entry.quietSince = now;
            entry.quietSuccesses = 0;
          }
          entry.quietSuccesses++;
          return;
        }
        breaker = makeSeeded(entry);
      } else breaker = entry.breaker;
    }
    if (!breaker.counting) return;
    if (isFailure(outcome)) breaker.failure();
    else breaker.success();
  };

  const rejectOpen = (req: MeshRequest): Promise<never> => {
    req.call.note?.("weft.breaker_open", { "weft.endpoint": req.endpoint?.url ?? "" });
    return Promise.reject(new BreakerOpenError(service, { attempts: req.call.attempts, endpoint: req.endpoint?.url }));
  };

  const layer: Layer =
    (next: Service): Service =>
    (req) => {
      const endpoint = req.endpoint;
      // Above balance (no endpoint) or after close(): nothing to guard.
      if (endpoint === null || closed) return next(req);
      let entry = cache.get(endpoint);
      if (entry === undefined) {
        entry = new BreakerEntry(endpoint);
        entry.quietSince = clock.now();
        cache.set(endpoint, entry);
      }
      if (entry.state !== "closed") {
        if (entry.state === "open" || entry.probes >= halfOpenProbes) return rejectOpen(req);
        entry.probes++;
      }
      const admitted = entry;
      const breaker = entry.breaker;
      let pending: Promise<MeshResponse>;
      try {
        pending = next(req);
      } catch (error) {
        settle(req, admitted, breaker, undefined, error);
        return Promise.reject(error);
      }
      return pending.then(
        (res) => {
          settle(req, admitted, breaker, res, undefined);
          return res;
        },
        (error: unknown) => {
          settle(req, admitted, breaker, undefined, error);
          throw error;
        },
      );
    };

  const stateOf = (endpoint: Endpoint): BreakerState => cache.peek(endpoint)?.state ?? "closed";
  return {
    name: "breaker",
    panicOverrides: false,
    isAvailable: (endpoint) => stateOf(endpoint) !== "open",
    layer,
    stateOf,
    forget: (endpoint) => {
      cache.delete(endpoint);
    },
    snapshot(): BreakerSnapshot {
      let open = 0;
      let halfOpen = 0;
      const endpoints: EndpointBreakerSnapshot[] = [];
      for (const entry of cache.values()) {
        if (entry.state === "open") open++;
        else if (entry.state === "halfOpen") halfOpen++;
        const window = entry.breaker;
        endpoints.push({
          url: entry.endpoint.url,
          state: entry.state,
          windowCalls: window === null ? entry.quietSuccesses : window.calls,
          windowFailures: window?.failures ?? 0,
          probesInFlight: entry.state === "halfOpen" ? entry.probes : 0,
        });
      }
      return { tracked: cache.size, open, halfOpen, endpoints };
    },
    close(): void {
      if (closed) return;
      closed = true;
      rotation.stop();
      cache.clear();
    },
  };
}

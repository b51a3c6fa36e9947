/**
 * Outlier detection (Envoy's passive health checking): watch the classified outcome of every
 * attempt and eject the endpoints that behave unlike their peers, for a time that grows each time
 * they are ejected again. Two rules, both Envoy's, with Envoy's defaults (`outlier-options.ts`)
 * and arithmetic (`ejection.ts`):
 *
 * - **consecutive failures** — inline, on the attempt that makes the count reach the threshold;
 * - **success rate** — every `intervalMs`, over that interval's counts per endpoint.
 *
 * It writes no endpoint field: it keeps its own record per endpoint (ejected, until when, how many
 * times — a lifetime count, for snapshots) and answers `isAvailable(endpoint)` as an availability
 * gate; its hooks signal the change, and the endpoint set asks again (slow start then ramps a
 * returning endpoint back in, if it has serving peers).
 *
 * The detector keeps its own counts (consecutive failures, the interval's requests and successes,
 * the ejection multiplier) beside each endpoint rather than in the endpoint's shared counters, so
 * it does not depend on where the balance layer updates those. `observe` is one map lookup and a
 * few integer writes: no allocation, O(1).
 *
 * One timer per detector, on the shared deadline wheel, armed for the earlier of the next sweep
 * and the next return — so an ejection lasts exactly its time, not up to an interval longer as in
 * Envoy (which returns hosts only at its sweeps). It is not armed while there is nothing to do:
 * no endpoints, or too few endpoints for the success-rate rule with nothing ejected and no
 * multiplier left to decay. Envoy's multiplier decay: each sweep lowers the multiplier by one for
 * every endpoint that has been back in service a full interval.
 */
import type { Outcome } from "../core/classifier.js";
import type { Clock } from "../core/clock.js";
import type { AvailabilityGate, Endpoint } from "../core/endpoint.js";
import { wheelFor, type DeadlineWheel, type Scheduled } from "../core/wheel.js";
import {
  ejectionMs,
  isSuccessRateOutlier,
  mayEject,
  raisedMultiplier,
  successRateThreshold,
  type SuccessRateThreshold,
} from "./ejection.js";
import type { OutlierConfig } from "./outlier-options.js";

export type EjectionReason = "consecutive" | "successRate";

export interface OutlierHooks {
  /** The endpoint was just ejected until `untilMs` (clock time). Refresh the set; emit an event. */
  onEject(endpoint: Endpoint, reason: EjectionReason, untilMs: number): void;
  /** The endpoint is back in service (`isAvailable` is true again). Refresh the set; emit an event. */
  onReturn(endpoint: Endpoint): void;
}

export interface OutlierSnapshot {
  readonly ejected: number;
  /** The last success-rate sweep that had enough endpoints, or null. */
  readonly successRate: SuccessRateThreshold | null;
  readonly endpoints: readonly {
    readonly url: string;
    readonly consecutiveFailures: number;
    readonly multiplier: number;
  }[];
}

/** The detector's counts for one endpoint. */
class Tracked {
  consecutive = 0;
  /** This interval's classified attempts (not `ignorable` ones) and successes among them. */
  total = 0;
  successes = 0;
  /** Envoy's ejection-time multiplier: the next ejection lasts `base × (multiplier + 1)`. */
  multiplier = 0;
  returnedAt = Number.NEGATIVE_INFINITY;
  ejected = false;
  /** While ejected: the clock time it returns. */
  ejectedUntil = 0;
  /** Times ejected, for snapshots (the ejection time grows with `multiplier`, not with this). */
  ejections = 0;
  constructor(readonly endpoint: Endpoint) {}
}

/** What the detector holds of one endpoint, for snapshots and tests. */
export interface EjectionRecord {
  readonly ejected: boolean;
  /** While ejected: the clock time it returns; otherwise 0. */
  readonly ejectedUntil: number;
  /** Times ejected. */
  readonly ejections: number;
}

export class OutlierDetector implements AvailabilityGate {
  readonly name = "outlier";
  /** Panic mode may still use an ejected endpoint (Envoy's panic threshold overrides ejection). */
  readonly panicOverrides = true;
  readonly #config: OutlierConfig;
  readonly #clock: Clock;
  readonly #hooks: OutlierHooks;
  readonly #wheel: DeadlineWheel;
  readonly #consecutiveLimit: number;
  #tracked = new Map<Endpoint, Tracked>();
  #ejected = 0;
  #timer: Scheduled | null = null;
  #timerAt = Number.POSITIVE_INFINITY;
  /** Clock time of the next sweep; infinite while the sweep is idle. */
  #sweepAt = Number.POSITIVE_INFINITY;
  #lastSuccessRate: SuccessRateThreshold | null = null;
  #closed = false;

  constructor(config: OutlierConfig, clock: Clock, hooks: OutlierHooks) {
    this.#config = config;
    this.#clock = clock;
    this.#hooks = hooks;
    this.#wheel = wheelFor(clock);
    this.#consecutiveLimit =
      config.consecutiveFailures === false ? Number.POSITIVE_INFINITY : config.consecutiveFailures;
  }

  /** Endpoints ejected now. */
  get ejected(): number {
    return this.#ejected;
  }

  isAvailable(endpoint: Endpoint): boolean {
    return this.#tracked.get(endpoint)?.ejected !== true;
  }

  /** The detector's record of `endpoint`, or undefined when it does not track it. */
  recordOf(endpoint: Endpoint): EjectionRecord | undefined {
    return this.#tracked.get(endpoint);
  }

  /**
   * Records one attempt's classified outcome. Call it once per attempt that reached a transport
   * (not for a breaker's refusal); endpoints not given to `setEndpoints` are ignored. Returns the
   * endpoint's ejection count when this outcome ejected it, else 0.
   */
  observe(endpoint: Endpoint, outcome: Outcome): number {
    // A shed (overloaded) answer is a busy endpoint, not a broken one: Envoy ejects for errors.
    if (outcome === "ignorable" || outcome === "overloaded") return 0;
    const tracked = this.#tracked.get(endpoint);
    // An attempt that finishes after its endpoint was ejected says nothing new (Envoy ignores it too).
    if (tracked === undefined || tracked.ejected) return 0;
    tracked.total++;
    if (outcome === "success") {
      tracked.successes++;
      tracked.consecutive = 0;
    } else if (++tracked.consecutive >= this.#consecutiveLimit) {
      // Reset whether or not the bound allowed the ejection: another full run is needed (Envoy).
      tracked.consecutive = 0;
      if (this.#eject(tracked, "consecutive", this.#clock.now())) return tracked.ejections;
    }
    return 0;
  }

  /**
   * Follows discovery: call with the set's endpoints after every update (the first included).
   * Endpoints that stay keep their counts; removed ones are forgotten.
   */
  setEndpoints(all: readonly Endpoint[]): void {
    if (this.#closed) return;
    const next = new Map<Endpoint, Tracked>();
    let ejected = 0;
    for (const endpoint of all) {
      const tracked = this.#tracked.get(endpoint) ?? new Tracked(endpoint);
      next.set(endpoint, tracked);
      if (tracked.ejected) ejected++;
    }
    this.#tracked = next;
    this.#ejected = ejected;
    this.#schedule(this.#clock.now());
  }

  /**
   * Returns an ejected endpoint to service now (for instance when an active health check passes
   * again — Envoy's `successful_active_health_check_uneject_host`). Calls `onReturn`.
   */
  uneject(endpoint: Endpoint): void {
    const tracked = this.#tracked.get(endpoint);
    if (tracked === undefined || !tracked.ejected) return;
    this.#return(tracked, this.#clock.now());
    this.#schedule(this.#clock.now());
  }

  snapshot(): OutlierSnapshot {
    const endpoints = [...this.#tracked.values()].map((t) => ({
      url: t.endpoint.url,
      consecutiveFailures: t.consecutive,
      multiplier: t.multiplier,
    }));
    return { ejected: this.#ejected, successRate: this.#lastSuccessRate, endpoints };
  }

  /**
   * Stops the timer and puts every endpoint it ejected back in service, without hooks (refresh
   * the set afterwards if it lives on, e.g. when outlier options change).
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = null;
    this.#tracked.clear();
    this.#ejected = 0;
  }

  /** Ejects the endpoint unless it is draining or the bound forbids it; true when it did. */
  #eject(tracked: Tracked, reason: EjectionReason, now: number): boolean {
    const endpoint = tracked.endpoint;
    if (endpoint.state === "draining" || tracked.ejected) return false;
    const { baseEjectionMs, maxEjectionMs } = this.#config;
    if (!mayEject(this.#ejected, this.#tracked.size, this.#config.maxEjectionPercent)) return false;
    tracked.multiplier = raisedMultiplier(tracked.multiplier, baseEjectionMs, maxEjectionMs);
    const until = now + ejectionMs(tracked.multiplier, baseEjectionMs, maxEjectionMs);
    tracked.ejected = true;
    tracked.ejectedUntil = until;
    tracked.ejections++;
    this.#ejected++;
    tracked.consecutive = 0;
    if (this.#sweepAt === Number.POSITIVE_INFINITY) this.#startSweeps(now);
    this.#arm(this.#sweepAt); // (re-arms only for an earlier time: the one timer serves both)
    this.#arm(until);
    call(() => this.#hooks.onEject(endpoint, reason, until));
    return true;
  }

  #return(tracked: Tracked, now: number): void {
    const endpoint = tracked.endpoint;
    tracked.ejected = false;
    tracked.ejectedUntil = 0;
    this.#ejected--;
    // A count left near the threshold would re-eject it on a handful of errors (Envoy resets too).
    tracked.consecutive = 0;
    tracked.returnedAt = now;
    call(() => this.#hooks.onReturn(endpoint));
  }

  /** True when sweeps have work: the success-rate rule can apply, an endpoint is out, or a multiplier can decay. */
  #sweepsNeeded(): boolean {
    if (this.#tracked.size === 0) return false;
    if (this.#ejected > 0) return true;
    if (this.#config.successRateStdevFactor !== false && this.#tracked.size >= this.#config.successRateMinimumHosts)
      return true;
    for (const tracked of this.#tracked.values()) if (tracked.multiplier > 0) return true;
    return false;
  }

  #startSweeps(now: number): void {
    this.#sweepAt = now + this.#config.intervalMs;
    // The first interval starts now: counts from an idle stretch would span more than one interval.
    for (const tracked of this.#tracked.values()) tracked.total = tracked.successes = 0;
  }

  /** Re-arms the one timer for the earlier of the next sweep and the next return. */
  #schedule(now: number): void {
    if (this.#closed) return;
    if (!this.#sweepsNeeded()) this.#sweepAt = Number.POSITIVE_INFINITY;
    else if (this.#sweepAt === Number.POSITIVE_INFINITY) this.#startSweeps(now);
    let at = this.#sweepAt;
    for (const tracked of this.#tracked.values()) {
      if (tracked.ejected && tracked.ejectedUntil < at) at = tracked.ejectedUntil;
    }
    this.#timer?.cancel();
    this.#timer = null;
    this.#timerAt = Number.POSITIVE_INFINITY;
    if (at !== Number.POSITIVE_INFINITY) this.#arm(at);
  }

  #arm(at: number): void {
    if (at >= this.#timerAt) return;
    this.#timer?.cancel();
    this.#timerAt = at;
    this.#timer = this.#wheel.schedule(at, this.#onTimer);
  }

  readonly #onTimer = (): void => {
    this.#timer = null;
    this.#timerAt = Number.POSITIVE_INFINITY;
    if (this.#closed) return;
    const now = this.#clock.now();
    for (const tracked of this.#tracked.values()) {
      if (tracked.ejected && tracked.ejectedUntil <= now) this.#return(tracked, now);
    }
    if (now >= this.#sweepAt) {
      this.#sweep(now);
      this.#sweepAt += this.#config.intervalMs;
      if (this.#sweepAt <= now) this.#sweepAt = now + this.#config.intervalMs; // the process stalled
    }
    this.#schedule(now);
  };

  /** One interval's evaluation: multiplier decay, then the success-rate rule; then fresh counts. */
  #sweep(now: number): void {
    const {
      intervalMs,
      successRateStdevFactor: factor,
      successRateMinimumHosts,
      successRateRequestVolume,
    } = this.#config;
    const candidates: Tracked[] = [];
    const rates: number[] = [];
    for (const tracked of this.#tracked.values()) {
      if (!tracked.ejected && tracked.multiplier > 0 && now - tracked.returnedAt >= intervalMs) tracked.multiplier--;
      const serving = !tracked.ejected && tracked.endpoint.state !== "draining";
      if (factor !== false && serving && tracked.total >= successRateRequestVolume) {
        candidates.push(tracked);
        rates.push(tracked.successes / tracked.total);
      }
      tracked.total = tracked.successes = 0;
    }
    if (factor === false || candidates.length < successRateMinimumHosts) return;
    const result = successRateThreshold(rates, rates.length, factor);
    this.#lastSuccessRate = result;
    for (let i = 0; i < candidates.length; i++) {
      if (isSuccessRateOutlier(rates[i] as number, result.threshold))
        this.#eject(candidates[i] as Tracked, "successRate", now);
    }
  }
}

/** Runs a hook; a throw becomes a process warning and never breaks a call or the sweep. */
function call(hook: () => void): void {
  try {
    hook();
  } catch (error) {
    process.emitWarning(`weft: an outlier detection hook threw: ${String(error)}`, { code: "WEFT_LISTENER_ERROR" });
  }
}

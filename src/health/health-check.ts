/**
 * Active health checks (Envoy's `health_checks`, HAProxy's `check`): request a path on every
 * endpoint every `intervalMs` and take an endpoint out after `unhealthyThreshold` failed checks in
 * a row, back after `healthyThreshold` passed ones (`check-policy.ts`). Outlier detection only
 * learns from traffic; a check also finds the replica that is broken before any call reaches it,
 * and the one that recovered while no traffic went its way.
 *
 * How it runs, and why:
 * - **One timer for the whole checker.** Each endpoint has one entry in a due-time heap — due at
 *   its next check, or, while a check is in flight, at that check's deadline — and one wheel entry
 *   is armed for the heap's top. A thousand endpoints cost one timer, and the timeout needs no
 *   timer of its own.
 * - **Never two checks in flight to one endpoint.** The next check is scheduled only when the
 *   current one has settled or timed out.
 * - **Cancellable.** Each check carries a `Cancellation`, aborted when the check times out, when
 *   its endpoint leaves the set, or when the checker closes; the client's `send` passes it to the
 *   transport, so an abandoned check closes its request. A timed-out check counts as failed at its
 *   deadline, whatever `send` does later.
 * - **Jittered** so checks of many endpoints and many clients do not line up (`check-policy.ts`).
 * - **Optimistic.** A new endpoint is healthy until its checks say otherwise: discovery vouched
 *   for it, and a fresh client would otherwise have nothing to send to for up to an interval.
 *   (Envoy instead holds new hosts out until their first check passes.)
 *
 * It writes no endpoint field: it keeps each endpoint's streak and verdict and answers
 * `isAvailable(endpoint)` as an availability gate; `onChange` signals a flip, and the endpoint set
 * asks again (slow start then ramps a recovered endpoint back in if it has serving peers).
 */
import { Cancellation } from "../core/cancel.js";
import type { Clock, Random } from "../core/clock.js";
import type { AvailabilityGate, Endpoint } from "../core/endpoint.js";
import { wheelFor, type DeadlineWheel, type Scheduled } from "../core/wheel.js";
import {
  firstCheckDelayMs,
  isExpectedStatus,
  nextCheckDelayMs,
  recordCheck,
  type CheckStreak,
} from "./check-policy.js";
import { DueHeap, type DueItem } from "./due-heap.js";
import type { HealthCheckConfig } from "./health-check-options.js";

/** One check, as the client's `send` receives it. */
export interface HealthCheckProbe {
  readonly method: string;
  readonly path: string;
  readonly timeoutMs: number;
  /** Aborted when the check times out, its endpoint leaves the set or the checker closes: give it to the transport. */
  readonly cancel: Cancellation;
}

/** Sends one check to the endpoint and resolves with the response status (a rejection is a failed check). */
export type HealthCheckSend = (endpoint: Endpoint, probe: HealthCheckProbe) => Promise<number>;

export interface HealthCheckerContext {
  readonly clock: Clock;
  readonly random: Random;
  readonly send: HealthCheckSend;
  /** The endpoint's verdict just changed to `healthy`. Refresh the set; emit an event. */
  onChange(endpoint: Endpoint, healthy: boolean): void;
}

export interface HealthCheckSnapshot {
  readonly endpoints: readonly { readonly url: string; readonly healthy: boolean; readonly checking: boolean }[];
}

/** Abort reasons handed to `send` through the probe's cancellation. */
export const HEALTH_CHECK_TIMED_OUT = new Error("weft: health check timed out");
export const HEALTH_CHECK_CANCELLED = new Error("weft: health check cancelled (endpoint removed or checker closed)");

class Target implements DueItem, CheckStreak {
  due = 0;
  slot = -1;
  healthy: boolean;
  passes = 0;
  fails = 0;
  /** The check in flight, or null. */
  inFlight: Cancellation | null = null;
  startedAt = 0;
  constructor(readonly endpoint: Endpoint) {
    this.healthy = true; // optimistic: discovery vouched for it
  }
}

export class HealthChecker implements AvailabilityGate {
  readonly name = "healthCheck";
  /** Panic mode may still use an endpoint failing its checks (Envoy's). */
  readonly panicOverrides = true;
  readonly #config: HealthCheckConfig;
  readonly #context: HealthCheckerContext;
  readonly #wheel: DeadlineWheel;
  readonly #heap = new DueHeap<Target>();
  #targets = new Map<Endpoint, Target>();
  #timer: Scheduled | null = null;
  #timerAt = Number.POSITIVE_INFINITY;
  #closed = false;

  constructor(config: HealthCheckConfig, context: HealthCheckerContext) {
    this.#config = config;
    this.#context = context;
    this.#wheel = wheelFor(context.clock);
  }

  /** False while the endpoint's checks fail (`unhealthyThreshold` in a row, until `healthyThreshold` pass). */
  isAvailable(endpoint: Endpoint): boolean {
    return this.#targets.get(endpoint)?.healthy !== false;
  }

  /** Checks in flight now. */
  get inFlight(): number {
    let n = 0;
    for (const target of this.#targets.values()) if (target.inFlight !== null) n++;
    return n;
  }

  /** Follows discovery: call with the set's endpoints after every update (the first included). */
  setEndpoints(all: readonly Endpoint[]): void {
    if (this.#closed) return;
    const now = this.#context.clock.now();
    const next = new Map<Endpoint, Target>();
    for (const endpoint of all) {
      let target = this.#targets.get(endpoint);
      if (target === undefined) {
        target = new Target(endpoint);
        target.due = now + firstCheckDelayMs(this.#config.intervalMs, this.#context.random());
        this.#heap.push(target);
      }
      next.set(endpoint, target);
    }
    for (const [endpoint, target] of this.#targets) {
      if (!next.has(endpoint)) this.#drop(target);
    }
    this.#targets = next;
    this.#arm();
  }

  snapshot(): HealthCheckSnapshot {
    const endpoints = [...this.#targets.values()].map((t) => ({
      url: t.endpoint.url,
      healthy: t.healthy,
      checking: t.inFlight !== null,
    }));
    return { endpoints };
  }

  /**
   * Stops the timer, aborts the checks in flight and marks every endpoint it had taken out healthy
   * again, without hooks (refresh the set afterwards if it lives on, e.g. when options change).
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = null;
    for (const target of this.#targets.values()) this.#drop(target);
    this.#targets.clear();
  }

  #drop(target: Target): void {
    this.#heap.remove(target);
    const inFlight = target.inFlight;
    target.inFlight = null;
    inFlight?.abort(HEALTH_CHECK_CANCELLED);
  }

  /** Arms the one timer for the heap's top (nothing when the heap is empty). */
  #arm(): void {
    const at = this.#heap.peek()?.due ?? Number.POSITIVE_INFINITY;
    if (at === this.#timerAt && this.#timer !== null) return;
    this.#timer?.cancel();
    this.#timer = null;
    this.#timerAt = at;
    if (at !== Number.POSITIVE_INFINITY) this.#timer = this.#wheel.schedule(at, this.#onTimer);
  }

  readonly #onTimer = (): void => {
    this.#timer = null;
    this.#timerAt = Number.POSITIVE_INFINITY;
    if (this.#closed) return;
    const now = this.#context.clock.now();
    for (let target = this.#heap.peek(); target !== undefined && target.due <= now; target = this.#heap.peek()) {
      if (target.inFlight !== null) this.#timedOut(target, now);
      else this.#start(target, now);
    }
    this.#arm();
  };

  #start(target: Target, now: number): void {
    const { method, path, timeoutMs } = this.#config;
    const cancel = new Cancellation();
    target.inFlight = cancel;
    target.startedAt = now;
    this.#heap.update(target, now + timeoutMs); // its deadline, while in flight
    let pending: Promise<number>;
    try {
      pending = this.#context.send(target.endpoint, { method, path, timeoutMs, cancel });
    } catch (error) {
      pending = Promise.reject(error);
    }
    Promise.resolve(pending).then(
      (status) => this.#settled(target, cancel, typeof status === "number" && isExpectedStatus(this.#config, status)),
      () => this.#settled(target, cancel, false),
    );
  }

  #settled(target: Target, cancel: Cancellation, passed: boolean): void {
    // Timed out, dropped or closed meanwhile: that check was already accounted for.
    if (this.#closed || target.inFlight !== cancel) return;
    target.inFlight = null;
    const now = this.#context.clock.now();
    this.#record(target, passed, now);
    this.#arm();
  }

  #timedOut(target: Target, now: number): void {
    const cancel = target.inFlight as Cancellation;
    target.inFlight = null; // first, so a send that settles during abort() is ignored
    cancel.abort(HEALTH_CHECK_TIMED_OUT);
    this.#record(target, false, now);
  }

  /** Counts a result, schedules the next check and reports a flip. */
  #record(target: Target, passed: boolean, now: number): void {
    const next = target.startedAt + nextCheckDelayMs(this.#config.intervalMs, this.#context.random());
    this.#heap.update(target, Math.max(next, now));
    if (!recordCheck(target, passed, this.#config.healthyThreshold, this.#config.unhealthyThreshold)) return;
    const endpoint = target.endpoint;
    try {
      this.#context.onChange(endpoint, target.healthy);
    } catch (error) {
      process.emitWarning(`weft: a health check onChange hook threw: ${String(error)}`, {
        code: "WEFT_LISTENER_ERROR",
      });
    }
  }
}

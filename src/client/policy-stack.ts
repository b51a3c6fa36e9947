/**
 * A policy's stack: the client's layers, in the client's order and for the client's reasons
 * (plan.ts), over a terminal that runs the function (`policy-call.ts`):
 *
 *   fallback → observe → trace → deadline → rate-limit → concurrency → retry → breaker → attempt → call
 *
 * What only HTTP has is left out (discovery, balance, routes, coalescing, attempt spans, `use`). There
 * is no `balance` to pick an endpoint, so every request carries one fixed pseudo-endpoint from the
 * start, and the per-endpoint breaker layer (breaker.ts, which keys its breakers by endpoint)
 * becomes the policy's one breaker. A layer that is off is not in the stack at all: a policy of
 * retries and a breaker runs four layers.
 */
import type { CallStats } from "../core/call-stats.js";
import type { Classifier } from "../core/classifier.js";
import type { Clock } from "../core/clock.js";
import { attemptLayer } from "../core/attempt.js";
import { deadlineLayer } from "../core/deadline.js";
import { Endpoint, type BreakerState } from "../core/endpoint.js";
import { BreakerOpenError } from "../core/errors.js";
import type { ClientEventHub } from "../core/events.js";
import { LatencyWindow } from "../core/latency.js";
import { Stack, type StackEntry } from "../core/stack.js";
import type { Layer, MeshRequest, Service } from "../core/types.js";
import { breakerLayer, type BreakerLayer } from "../health/breaker.js";
import type { BreakerConfig } from "../health/breaker-options.js";
import { concurrencyLayer, type ConcurrencySnapshot } from "../limit/concurrency.js";
import { fallbackLayer } from "../limit/fallback.js";
import { rateLimitLayer, type RateLimitSnapshot } from "../limit/rate-limit.js";
import { RetryBudget } from "../retry/budget.js";
import { policySpanLayer } from "../telemetry/call-span.js";
import { retryLayer } from "../retry/layer.js";
import { observeLayer, type CallCounters } from "./observe.js";
import { callTerminal, envelope } from "./policy-call.js";
import type { PolicyConfig } from "./policy-options.js";

/**
 * The one endpoint every request of a policy carries, so the breaker layer guards it. It never
 * leaves the policy: events and metrics name no endpoint ("").
 */
export const POLICY_ENDPOINT = new Endpoint({ url: "http://policy.invalid" }, 0);

/** The policy's one breaker: its state and its rolling window. */
export interface PolicyBreakerSnapshot {
  readonly state: BreakerState;
  /** Successes plus failures in the window (of the window that opened it, while open). */
  readonly windowCalls: number;
  readonly windowFailures: number;
  /** Probe calls in flight (half-open only). */
  readonly probesInFlight: number;
}

/** What a policy's stack was built with, for its snapshot and `close()`. */
export interface PolicyStack {
  readonly service: Service;
  /** The stack's roles in request order. */
  readonly roles: readonly string[];
  readonly budget: RetryBudget | null;
  readonly breaker: PolicyBreaker | null;
  readonly concurrency: (() => ConcurrencySnapshot) | null;
  readonly rateLimit: (() => RateLimitSnapshot) | null;
}

/** What the stack shares with the policy that owns it. */
export interface PolicyParts {
  readonly events: ClientEventHub;
  readonly counters: CallCounters;
  readonly stats: CallStats;
  readonly classifier: Classifier;
}

export function policyStack(config: PolicyConfig, parts: PolicyParts): PolicyStack {
  const { name, clock, random } = config;
  const { events, classifier } = parts;
  // In request order, first = outermost.
  const entries: StackEntry[] = [];
  const fallback = config.fallback;
  // Answers only once everything below has given up; the counters below still see the failure.
  if (fallback !== undefined)
    entries.push({ role: "fallback", layer: fallbackLayer(async (_req, error) => envelope(await fallback(error))) });
  // Counts each call once, with the outcome and latency the caller gets.
  entries.push({ role: "observe", layer: observeLayer(name, parts.counters, parts.stats, classifier, clock, events) });
  // The call's span covers every run and wait; the function's own spans are its children.
  if (config.tracing) entries.push({ role: "trace", layer: policySpanLayer() });
  // The total budget bounds every wait below it (a slot, a token, each run, each backoff); also a
  // deadline inherited from the request being served, so it is there even without `totalMs`.
  entries.push({ role: "deadline", layer: deadlineLayer({ clock, events, totalMs: config.totalMs }) });
  let rateLimit: PolicyStack["rateLimit"] = null;
  // A call waiting for a token holds no slot; the bucket counts calls, not runs.
  if (config.rateLimit !== false) {
    const limiter = rateLimitLayer({ service: name, config: config.rateLimit, clock, events });
    entries.push({ role: "rate-limit", layer: limiter.layer });
    rateLimit = limiter.snapshot;
  }
  let concurrency: PolicyStack["concurrency"] = null;
  // One call holds one slot across all its runs; queueing ends at the deadline.
  if (config.concurrency !== false) {
    const limiter = concurrencyLayer({ service: name, config: config.concurrency, clock, classifier, events });
    entries.push({ role: "concurrency", layer: limiter.layer });
    concurrency = limiter.snapshot;
  }
  let budget: RetryBudget | null = null;
  // Above the breaker: an open breaker ends the call at once rather than being retried.
  if (config.retry !== false || config.hedge !== false) {
    budget = config.budget === false ? null : new RetryBudget(config.budget);
    const { retry, hedge } = config;
    const latency = new LatencyWindow();
    entries.push({
      role: "retry",
      layer: retryLayer({ service: name, retry, hedge, budget, latency, classifier, clock, random, events }),
    });
  }
  let breaker: PolicyBreaker | null = null;
  // Above attempt, so a run that timed out counts as a failure.
  if (config.breaker !== false) {
    breaker = new PolicyBreaker(name, config.breaker, clock, parts);
    entries.push({ role: "breaker", layer: breaker.guard }, { role: "breaker", layer: breaker.layer });
  }
  // Bounds one run of the function, aborting its signal.
  if (config.attemptMs !== Infinity)
    entries.push({
      role: "attempt",
      layer: attemptLayer({ clock, events, attemptMs: config.attemptMs, header: false }),
    });
  const stack = new Stack(entries);
  return {
    service: stack.build(callTerminal(events, classifier, clock)),
    roles: stack.roles,
    budget,
    breaker,
    concurrency,
    rateLimit,
  };
}

/** breaker.ts's layer over the one pseudo-endpoint, with the state it reports kept at hand. */
export class PolicyBreaker {
  /** As the layer last reported it (every transition is reported): read per call, no lookup. */
  state: BreakerState = "closed";
  readonly #name: string;
  readonly #breakers: BreakerLayer;

  constructor(name: string, config: BreakerConfig, clock: Clock, parts: PolicyParts) {
    const events = parts.events;
    this.#name = name;
    this.#breakers = breakerLayer({
      service: name,
      config,
      classifier: parts.classifier,
      clock,
      onStateChange: (_endpoint, from, to) => {
        this.state = to;
        if (events.breakerStateChange.active) events.breakerStateChange.emit({ service: name, endpoint: "", from, to });
      },
    });
  }

  get layer(): Layer {
    return this.#breakers.layer;
  }

  /**
   * An open breaker ends the call at once, naming the policy and no endpoint (so the retry layer
   * does not look for "another" one); while half-open, a call beyond the probes is refused alike.
   */
  readonly guard: Layer = (next) => (req) => {
    const state = this.state;
    if (state === "closed") return next(req);
    if (state === "open") return Promise.reject(this.#refuse(req));
    return next(req).catch((error: unknown) => {
      throw error instanceof BreakerOpenError && error.endpoint === POLICY_ENDPOINT.url ? this.#refuse(req) : error;
    });
  };

  snapshot(): PolicyBreakerSnapshot {
    const row = this.#breakers.snapshot().endpoints[0];
    return {
      state: this.state,
      windowCalls: row?.windowCalls ?? 0,
      windowFailures: row?.windowFailures ?? 0,
      probesInFlight: row?.probesInFlight ?? 0,
    };
  }

  close(): void {
    this.#breakers.close();
  }

  #refuse(req: MeshRequest): BreakerOpenError {
    return new BreakerOpenError(this.#name, {
      attempts: req.call.attempts,
      message: `the circuit breaker of policy "${this.#name}" is open`,
    });
  }
}

/**
 * `policy()` — weft's resilience for any async function (a Hystrix command, a cockatiel policy):
 * a database query, a queue publish, a call through another library. A policy is a small weft
 * stack — the client's own layers, in the client's order (`policy-stack.ts`), checked by the
 * client's own option rules (`policy-options.ts`) — over a terminal that runs the function
 * (`policy-call.ts`). Its events, snapshot and metrics are a client's, where they apply.
 *
 * Cost (FACTS.md; bench/policy.ts): the function gets an `AbortSignal` only when it declares a
 * parameter (`fn.length > 0`), since Node makes one in ~5 µs; deadlines are entries in the shared
 * wheel aborting a plain `Cancellation`, made only when a timeout, a hedge, the caller's signal or
 * a request context can cancel the call.
 */
import { Cancellation, linkSignal } from "../core/cancel.js";
import { CallStats, type CallStatsSnapshot } from "../core/call-stats.js";
import { currentContext, inheritedDeadline } from "../core/context.js";
import { ClientClosedError, TotalTimeoutError } from "../core/errors.js";
import { ClientEventHub, type ClientEvents } from "../core/events.js";
import type { MeshRequest, MeshResponse, Service } from "../core/types.js";
import type { ConcurrencySnapshot } from "../limit/concurrency.js";
import type { RateLimitSnapshot } from "../limit/rate-limit.js";
import { clientMetrics, type MetricsSnapshot } from "../telemetry/metrics.js";
import { hold, release } from "../core/keep-alive.js";
import { CallCounters } from "./observe.js";
import { PolicyCall, valueOf, type PolicyFunction } from "./policy-call.js";
import { policyClassifier } from "./policy-classifier.js";
import { normalizePolicyOptions, type PolicyConfig, type PolicyOptions } from "./policy-options.js";
import { POLICY_ENDPOINT, policyStack, type PolicyBreakerSnapshot, type PolicyStack } from "./policy-stack.js";

export type { PolicyOptions } from "./policy-options.js";
export type { PolicyResult } from "./policy-classifier.js";
export type { PolicyFunction } from "./policy-call.js";
export type { PolicyBreakerSnapshot } from "./policy-stack.js";

/** `policy.execute(fn, options)`'s per-call options. */
export interface ExecuteOptions {
  /** Aborts the call: the function's signal aborts, waits end, and the call rejects with the signal's reason. */
  readonly signal?: AbortSignal | null;
  /** This call is safe to run twice at once, so it may be hedged. Default: the policy's `idempotent`. */
  readonly idempotent?: boolean;
}

/** A policy's typed events: a client's, where they apply. Each `onX(listener)` returns a disposer. */
export type PolicyEvents = Pick<
  ClientEvents,
  | "onCallEnd"
  | "onAttemptStart"
  | "onAttemptEnd"
  | "onTimeout"
  | "onRetry"
  | "onHedge"
  | "onBudgetExhausted"
  | "onBreakerStateChange"
  | "onLimited"
>;

export interface PolicySnapshot {
  readonly name: string;
  readonly closed: boolean;
  /** Calls, in flight, successes, failures, ignorable (the caller's aborts), runs of the function, timeouts. */
  readonly counters: Readonly<CallCounters>;
  /** Retry tokens available now (null without retries, hedges or budget). */
  readonly retryBudget: number | null;
  readonly breaker: PolicyBreakerSnapshot | null;
  readonly limits: { readonly concurrency: ConcurrencySnapshot | null; readonly rateLimit: RateLimitSnapshot | null };
  /** Rates, success % and latency percentiles over the last 10 s, one point per second for 5 minutes. */
  readonly stats: CallStatsSnapshot;
}

const NO_ATTRS = Object.freeze({});
const noop = (): void => {};

/** Made by `policy(options)`. */
export class Policy<F = never> {
  readonly name: string;
  readonly #config: PolicyConfig;
  readonly #events = new ClientEventHub();
  readonly #counters = new CallCounters();
  readonly #stats = new CallStats();
  readonly #stack: PolicyStack;
  readonly #service: Service;
  /** Cancellation is needed by every call (a timeout or a hedge can abort it), not only those given a signal. */
  readonly #cancellable: boolean;
  /** The policy waits on timers of its own (backoff, token, deadline): a call in flight holds the process (keep-alive.ts). */
  readonly #holds: boolean;
  readonly #settle = (res: MeshResponse): unknown => {
    if (this.#holds) release();
    return valueOf(res);
  };
  readonly #fail = (error: unknown): never => {
    if (this.#holds) release();
    throw error;
  };
  readonly #stopMetrics: (() => void) | null;
  #closed = false;

  /** Use `policy(options)`. */
  constructor(options?: PolicyOptions<F>) {
    const config = normalizePolicyOptions(options);
    this.#config = config;
    this.name = config.name;
    const classifier = policyClassifier(config.classify);
    const events = this.#events;
    this.#stack = policyStack(config, { events, counters: this.#counters, stats: this.#stats, classifier });
    this.#service = this.#stack.service;
    this.#cancellable = config.totalMs !== Infinity || config.attemptMs !== Infinity || config.hedge !== false;
    this.#holds = this.#cancellable || config.retry !== false || config.rateLimit !== false;
    this.#stopMetrics =
      config.metrics === false
        ? null
        : clientMetrics({
            service: config.name,
            // A run of a function is no HTTP request: weft.policy.attempt.duration, not http.client.request.duration.
            events: events.api,
            attempts: "policy",
            snapshot: () => this.#metricsSnapshot(),
            meterProvider: config.metrics.meterProvider,
          });
  }

  /** The layers' roles in request order (`["observe", "deadline", "retry", "breaker", "breaker"]`). */
  get roles(): readonly string[] {
    return this.#stack.roles;
  }

  /** Typed events (a client's, where they apply); each `onX(listener)` returns a disposer. */
  get events(): PolicyEvents {
    return this.#events.api;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Runs `fn` under the policy and resolves with its value (or the fallback's). `fn` gets an
   * `AbortSignal` that aborts when its run times out, the call's deadline passes, the caller's
   * `signal` aborts or a hedge wins — if it declares a parameter — and the run's number (0 first).
   * Rejects with the function's error when it is not retried, or a `WeftError` saying which limit
   * ran out, the last error as its `cause` (`WEFT_ERR_ATTEMPTS`, `WEFT_ERR_TOTAL_TIMEOUT`, …).
   * @example const order = await ordersDb.execute((signal) => db.query("select * from orders where id = $1", [id], { signal }));
   */
  execute<T>(fn: PolicyFunction<T>, options?: ExecuteOptions): Promise<T | F> {
    if (this.#closed) return Promise.reject(closedError(this.name));
    if (typeof fn !== "function")
      return Promise.reject(new TypeError("execute: expected a function (signal, attempt) => value or promise"));
    let idempotent = this.#config.idempotent;
    let signal: AbortSignal | null = null;
    if (options !== undefined) {
      if (typeof options !== "object" || options === null)
        return Promise.reject(new TypeError("execute: options must be { signal?, idempotent? }"));
      signal = options.signal ?? null;
      if (options.idempotent !== undefined) idempotent = options.idempotent === true;
    }
    const context = currentContext();
    const call = new PolicyCall(fn, signal !== null || context !== undefined);
    if (signal === null && context === undefined) {
      // The common path: nothing outside can cancel the call.
      const cancel = this.#cancellable ? new Cancellation() : null;
      if (!this.#holds)
        return this.#service(this.#request(call, cancel, Infinity, idempotent)).then(valueOf) as Promise<T | F>;
      hold();
      return this.#service(this.#request(call, cancel, Infinity, idempotent)).then(this.#settle, this.#fail) as Promise<
        T | F
      >;
    }
    // As a client call: a child of the request context's cancellation, its deadline inherited.
    let cancel: Cancellation;
    let deadline = Infinity;
    if (context === undefined) cancel = new Cancellation();
    else {
      cancel = context.cancel.child();
      deadline = inheritedDeadline(context, this.#config.clock);
      if (!cancel.aborted && deadline <= this.#config.clock.now()) {
        cancel.release();
        const message = `the deadline this call inherits from the request being served has passed: policy "${this.name}" did not run`;
        return Promise.reject(new TotalTimeoutError(0, { message }));
      }
    }
    const unlink = signal === null ? noop : linkSignal(signal, cancel);
    const unlinkCall = (): void => {
      unlink();
      cancel.release();
    };
    if (cancel.aborted) {
      unlinkCall();
      return Promise.reject(cancel.reason);
    }
    if (this.#holds) hold();
    const pending = this.#service(this.#request(call, cancel, deadline, idempotent));
    return pending.then(
      (res) => (unlinkCall(), this.#settle(res)),
      (error: unknown) => {
        unlinkCall();
        return this.#fail(error);
      },
    ) as Promise<T | F>;
  }

  /** Plain JSON: counters, the last 10 s, the breaker, the retry budget, the limits. */
  snapshot(): PolicySnapshot {
    const clock = this.#config.clock;
    const now = clock.now();
    const { budget, breaker, concurrency, rateLimit } = this.#stack;
    return {
      name: this.name,
      closed: this.#closed,
      counters: { ...this.#counters },
      retryBudget: budget === null ? null : Math.round(budget.balance(now) * 1000) / 1000,
      breaker: breaker?.snapshot() ?? null,
      limits: { concurrency: concurrency?.() ?? null, rateLimit: rateLimit?.() ?? null },
      stats: this.#stats.snapshot(now, clock.wallNow()),
    };
  }

  /** Refuses new calls (`WEFT_ERR_CLIENT_CLOSED`), lets calls in flight finish, stops the breaker's timer and the metrics. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopMetrics?.();
    this.#stack.breaker?.close();
    this.#events.clear();
  }

  #request(call: PolicyCall, cancel: Cancellation | null, deadline: number, idempotent: boolean): MeshRequest {
    return {
      method: "CALL",
      path: "",
      headers: NO_ATTRS,
      body: null,
      idempotent,
      cancel,
      deadline,
      attempt: 0,
      // Set from the start (there is no balance layer): the breaker guards this one pseudo-endpoint.
      endpoint: POLICY_ENDPOINT,
      service: this.name,
      attrs: NO_ATTRS,
      timeout: null,
      call,
    };
  }

  /** What the OpenTelemetry observers read: the policy as a service with one endpoint-less row (its breaker). */
  #metricsSnapshot(): MetricsSnapshot {
    const snap = this.snapshot();
    const breaker = snap.breaker;
    return {
      counters: snap.counters,
      endpoints:
        breaker === null
          ? []
          : [{ url: "", state: "healthy", inflight: snap.counters.inflight, breaker: breaker.state }],
      limits: { concurrency: snap.limits.concurrency },
      retryBudget: snap.retryBudget,
      discovery: { stale: false },
    };
  }
}

function closedError(name: string): ClientClosedError {
  const error = new ClientClosedError(name);
  error.message = `policy "${name}" is closed`;
  return error;
}

/**
 * Weft's resilience for any async function — the client's timeouts, retries with a budget,
 * hedging, breaker, bulkhead, rate limit and fallback, its events, snapshot and metrics. Each
 * policy is off unless given (`{}`: the client's defaults); options are checked here, by the
 * client's rules, naming the option.
 * @example
 * const ordersDb = policy({ name: "orders-db", timeout: { attemptMs: 200, totalMs: 1000 }, retry: { maxAttempts: 3 }, breaker: {} });
 * const order = await ordersDb.execute((signal) => db.query("select * from orders where id = $1", [id], { signal }));
 */
export function policy<F = never>(options: PolicyOptions<F> = {}): Policy<F> {
  return new Policy(options);
}

/**
 * `policy()`'s options: the client's own option rules (the stack plan's normalisers, so the
 * checks, defaults and messages are the client's), with three differences a function call needs:
 *
 * - **An absent policy is off.** A client's retries, breakers and 15 s deadline are on by default
 *   because HTTP tells weft what is safe to resend; weft knows nothing of a function, so a policy
 *   runs only what it is given. `retry: {}` (or `breaker: {}`, `timeout: {}`…) gives the client's
 *   defaults, with their pedigree.
 * - **Classification is cockatiel's `handleAll`** unless told otherwise: a value is a success, a
 *   thrown error a retryable failure; `classifier` or `retryOn` replace that rule
 *   (`policy-classifier.ts`).
 * - **One breaker, no endpoints**: options that name endpoints or HTTP (`breaker.maxEndpoints`,
 *   `timeout.header`) are refused, as are the client's own (`discovery`, `transport`…).
 */
import type { Outcome } from "../core/classifier.js";
import type { Clock, Random } from "../core/clock.js";
import { InvalidOptionsError } from "../core/errors.js";
import { checkKeys, fail, isPlainObject } from "../core/validate.js";
import type { BreakerConfig, BreakerOptions } from "../health/breaker-options.js";
import type { ConcurrencyConfig, ConcurrencyOptions, RateLimitConfig, RateLimitOptions } from "../limit/options.js";
import type { RetryBudgetConfig } from "../retry/budget.js";
import type { HedgeConfig } from "../retry/hedge.js";
import type { HedgeOptions, RetryOptions } from "../retry/options.js";
import type { RetryConfig } from "../retry/policy.js";
import type { MeterProvider } from "../telemetry/index.js";
import { CLIENT_OPTIONS, type TimeoutOptions } from "./options.js";
import { planOptions, STACK_PLAN, type OptionRule } from "./plan.js";
import type { PolicyResult } from "./policy-classifier.js";
import type { TimeoutConfig } from "./policy-rules.js";

/**
 * `policy()`'s options. Each policy is off unless given; `{}` gives the client's defaults.
 * @example policy({ name: "orders-db", timeout: { attemptMs: 200, totalMs: 1000 }, retry: { maxAttempts: 3 }, breaker: {} })
 */
export interface PolicyOptions<F = never> {
  /** Names the policy in events, errors, metrics (`weft.service`) and the snapshot. Default `"policy"`. */
  readonly name?: string;
  /** `attemptMs` bounds one run of the function, `totalMs` the whole call (every run, backoff and queue). Off unless set. */
  readonly timeout?: Omit<TimeoutOptions, "header"> | false;
  /** Runs the function again after a retryable failure, within `maxAttempts`, the retry budget and the deadline. `{}`: 3 attempts, 25 ms full-jitter backoff, budget 20 % + 10/s. */
  readonly retry?: RetryOptions | false;
  /** Runs a second copy when the first is slow — only for calls marked `idempotent`; a hedge spends a retry token. */
  readonly hedge?: HedgeOptions | false;
  /** One circuit breaker for the policy. `{}`: opens above 50 % failures over 10 s (10 calls at least), half-opens after 5 s. */
  readonly breaker?: Omit<BreakerOptions, "maxEndpoints"> | false;
  /** A bulkhead: `{ limit, queue }` (`{}`: 256 and 512), or `{ adaptive: true }`. Queued calls wait until their deadline at most. */
  readonly concurrency?: ConcurrencyOptions | false;
  /** A token bucket: `{ perSecond, burst?, queue? }`. */
  readonly rateLimit?: RateLimitOptions | false;
  /** The value of a call that failed with an error (not the caller's own abort). The counters still see the failure. */
  readonly fallback?: (error: unknown) => F | PromiseLike<F>;
  /** Every call of this policy is safe to run twice at once (hedging). Default false; `execute(fn, { idempotent })` decides per call. */
  readonly idempotent?: boolean;
  /** Decides what a result means. Default: a value is `"success"`, an error `"retryable"`. Exclusive with `retryOn`. */
  readonly classifier?: (result: PolicyResult) => Outcome;
  /** Which errors are retried (true) or only counted as failures (false). Default: every error. Exclusive with `classifier`. */
  readonly retryOn?: (error: unknown) => boolean;
  /** OpenTelemetry metrics, as a client's: on when a meter provider is registered or given. `false`: off. */
  readonly metrics?: boolean | { readonly meterProvider?: MeterProvider };
  /** A span per call (`"{name}"`, the function's own spans its children) when an OpenTelemetry SDK is registered. Default true. */
  readonly tracing?: boolean;
  /** Injected time. Default: the system clock. */
  readonly clock?: Clock;
  /** Injected randomness in [0, 1). Default `Math.random`. */
  readonly random?: Random;
}

export interface PolicyConfig {
  readonly name: string;
  readonly attemptMs: number;
  readonly totalMs: number;
  readonly retry: RetryConfig | false;
  readonly budget: RetryBudgetConfig | false;
  readonly hedge: HedgeConfig | false;
  readonly breaker: BreakerConfig | false;
  readonly concurrency: ConcurrencyConfig | false;
  readonly rateLimit: RateLimitConfig | false;
  readonly fallback: ((error: unknown) => unknown) | undefined;
  readonly idempotent: boolean;
  /** The user's rule for the function's results; null: cockatiel's `handleAll`. */
  readonly classify: ((result: PolicyResult) => Outcome) | null;
  readonly metrics: false | { readonly meterProvider: MeterProvider | undefined };
  readonly tracing: boolean;
  readonly clock: Clock;
  readonly random: Random;
}

const KEYS = [
  "name",
  "timeout",
  "retry",
  "hedge",
  "breaker",
  "concurrency",
  "rateLimit",
  "fallback",
  "idempotent",
  "classifier",
  "retryOn",
  "metrics",
  "tracing",
  "clock",
  "random",
] as const;

const PLAN_RULES = planOptions(STACK_PLAN);

/** The rule the client applies to `key` (the plan's, or the client's own). */
function clientRule(key: string): OptionRule {
  const rule = PLAN_RULES.get(key) ?? CLIENT_OPTIONS[key];
  if (rule === undefined) throw new Error(`policy: the client has no option "${key}"`);
  return rule;
}

/** Refuses `key` inside `value` (a client option that has no meaning for a function call). */
function refuse(value: unknown, at: string, key: string, why: string): void {
  if (isPlainObject(value) && value[key] !== undefined)
    throw new InvalidOptionsError(`${at}.${key}`, `option ${at}.${key} does not apply to a policy: ${why}`);
}

/** Validates and normalizes `policy()`'s options in one pass, by the client's rules; throws `InvalidOptionsError`. */
export function normalizePolicyOptions(options: unknown): PolicyConfig {
  if (options === undefined) options = {};
  if (!isPlainObject(options)) fail("options", options, "an object of policy options");
  if (options.bulkhead !== undefined)
    throw new InvalidOptionsError(
      "bulkhead",
      "unknown option bulkhead: weft calls the bulkhead concurrency: { limit, queue } (or { adaptive: true })",
    );
  checkKeys(options, KEYS, "");
  const o = options;
  const name = o.name ?? "policy";
  if (typeof name !== "string" || name.trim() === "") fail("name", name, "a non-empty string naming the policy");
  // Absent is off (see the header); the client's rule reads `false` as off and checks the rest.
  const off = (key: string): unknown => (o[key] === undefined ? false : o[key]);
  refuse(o.timeout, "timeout", "header", "there is no request to carry a header");
  const timeout = clientRule("timeout").normalize(off("timeout"), "timeout") as TimeoutConfig;
  const { retry, budget } = clientRule("retry").normalize(off("retry"), "retry") as {
    retry: RetryConfig | false;
    budget: RetryBudgetConfig | false;
  };
  const hedge = clientRule("hedge").normalize(off("hedge"), "hedge") as HedgeConfig | false;
  refuse(o.breaker, "breaker", "maxEndpoints", "a policy has one breaker");
  const breaker = clientRule("breaker").normalize(off("breaker"), "breaker") as BreakerConfig | false;
  const concurrency = clientRule("concurrency").normalize(o.concurrency, "concurrency") as ConcurrencyConfig | false;
  const rateLimit = clientRule("rateLimit").normalize(o.rateLimit, "rateLimit") as RateLimitConfig | false;
  if (o.fallback !== undefined && typeof o.fallback !== "function")
    fail("fallback", o.fallback, "a function (error) => value");
  if (o.idempotent !== undefined && typeof o.idempotent !== "boolean")
    fail("idempotent", o.idempotent, "true or false");
  if (o.classifier !== undefined && typeof o.classifier !== "function")
    fail("classifier", o.classifier, 'a function (result) => "success" | "retryable" | "failure" | "ignorable"');
  if (o.retryOn !== undefined && typeof o.retryOn !== "function")
    fail("retryOn", o.retryOn, "a function (error) => boolean");
  if (o.retryOn !== undefined && o.classifier !== undefined)
    fail("retryOn", o.retryOn, "absent when classifier is given (the classifier decides what is retried)");
  return Object.freeze({
    name,
    attemptMs: timeout.attemptMs,
    totalMs: timeout.totalMs,
    retry,
    budget,
    hedge,
    breaker,
    concurrency,
    rateLimit,
    fallback: o.fallback as ((error: unknown) => unknown) | undefined,
    idempotent: o.idempotent === true,
    classify: userClassify(o.classifier as PolicyOptions["classifier"], o.retryOn as PolicyOptions["retryOn"]),
    metrics: clientRule("metrics").normalize(o.metrics, "metrics") as PolicyConfig["metrics"],
    tracing: clientRule("tracing").normalize(o.tracing, "tracing") as boolean,
    clock: clientRule("clock").normalize(o.clock, "clock") as Clock,
    random: clientRule("random").normalize(o.random, "random") as Random,
  });
}

/** What the user's function results mean: their classifier, their `retryOn`, or null for cockatiel's `handleAll`. */
function userClassify(
  classifier: PolicyOptions["classifier"],
  retryOn: PolicyOptions["retryOn"],
): ((result: PolicyResult) => Outcome) | null {
  if (classifier !== undefined) return classifier;
  if (retryOn !== undefined) return (r) => (r.ok ? "success" : retryOn(r.error) ? "retryable" : "failure");
  return null;
}

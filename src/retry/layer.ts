/**
 * The retry layer: resends what the classifier calls `retryable`, within `maxAttempts`, the retry
 * budget and the call's deadline, with full-jitter backoff or the server's `Retry-After`. Hedged
 * calls (idempotent, replayable, with `hedge` set) run in `hedge.ts`: a hedge is a budgeted early
 * retry, so both paths share the policy (`policy.ts`), the budget and the reports (`report.ts`).
 *
 * It sits above balance so each resend picks again (preferring an endpoint not yet tried), and
 * below the deadline so every wait ends at the call's deadline.
 *
 * When retries end the caller gets the last response (a 503 stays a response) or an error saying
 * which limit ran out: `WEFT_ERR_ATTEMPTS`, `WEFT_ERR_BUDGET_EXHAUSTED`, `WEFT_ERR_TOTAL_TIMEOUT`.
 * An error that was not retryable passes through unchanged.
 */
import { isRetryable, type Classifier, type Outcome } from "../core/classifier.js";
import type { Clock, Random } from "../core/clock.js";
import type { ClientEventHub } from "../core/events.js";
import { isReplayable } from "../core/request.js";
import type { Layer, MeshRequest, MeshResponse, Service } from "../core/types.js";
import { wheelFor } from "../core/wheel.js";
import type { RetryBudget } from "./budget.js";
import { LatencyWindow } from "../core/latency.js";
import { hedgedCall, type HedgeConfig, type HedgeContext } from "./hedge.js";
import { decideRetry, type PolicyContext, type RetryConfig } from "./policy.js";
import { retryReports } from "./report.js";
import { sleep } from "../core/sleep.js";

export interface RetryLayerContext {
  readonly service: string;
  /** `false`: one attempt (hedges still allowed). */
  readonly retry: RetryConfig | false;
  readonly hedge: HedgeConfig | false;
  readonly budget: RetryBudget | null;
  readonly latency: LatencyWindow;
  readonly classifier: Classifier;
  readonly clock: Clock;
  readonly random: Random;
  readonly events: ClientEventHub;
}

const SINGLE_ATTEMPT: RetryConfig = Object.freeze({
  maxAttempts: 1,
  backoff: { baseMs: 0, maxMs: 0 },
  retryAfterMaxMs: 0,
});

/** What a route (or the dynamic config) may override for its calls: both normalized as the client's options. */
export interface RetryOverrides {
  readonly retry?: { readonly retry: RetryConfig | false };
  readonly hedge?: HedgeConfig | false;
}

/** One retry policy's way of running a call: the client's own, or a route's. */
type Strategy = (next: Service, req: MeshRequest) => Promise<MeshResponse>;

export function retryLayer(ctx: RetryLayerContext): Layer {
  const { budget, clock } = ctx;
  const own = strategy(ctx, ctx.retry, ctx.hedge, ctx.latency);
  // A route's overrides get a strategy of their own, made on its first call and kept as long as
  // the route table that holds them (each table version makes new override objects). A route
  // that hedges at a percentile measures its own latencies.
  const routed = new WeakMap<object, Strategy>();
  const strategyFor = (overrides: RetryOverrides): Strategy => {
    let s = routed.get(overrides);
    if (s === undefined) {
      const retry = overrides.retry === undefined ? ctx.retry : overrides.retry.retry;
      const hedge = overrides.hedge === undefined ? ctx.hedge : overrides.hedge;
      s = strategy(ctx, retry, hedge, overrides.hedge === undefined ? ctx.latency : new LatencyWindow());
      routed.set(overrides, s);
    }
    return s;
  };

  return (next) => (req) => {
    if (budget !== null) budget.deposit(req.call.startedAt >= 0 ? req.call.startedAt : clock.now());
    const overrides = req.call.route === null ? null : (req.call.route.overrides as RetryOverrides | null);
    if (overrides === null || (overrides.retry === undefined && overrides.hedge === undefined)) return own(next, req);
    return strategyFor(overrides)(next, req);
  };
}

/** The retry (and hedging) of one policy: the sequential path, the retry loop and the hedged path. */
function strategy(
  ctx: RetryLayerContext,
  retry: RetryConfig | false,
  hedge: HedgeConfig | false,
  latency: LatencyWindow,
): Strategy {
  // One attempt and no hedges: the attempt's outcome is the call's, as without this layer.
  if (retry === false && hedge === false) return (next, req) => next(req);
  const { clock, classifier, events, budget } = ctx;
  const wheel = wheelFor(clock);
  const policy: PolicyContext = {
    service: ctx.service,
    config: retry === false ? SINGLE_ATTEMPT : retry,
    budget,
    clock,
    random: ctx.random,
  };
  const reports = retryReports(ctx.service, events);
  const record = (outcome: Outcome, startedAt: number): void => {
    if (outcome === "success" && hedge !== false) latency.record(clock.now() - startedAt, clock.now());
  };

  /**
   * After a retryable failure of attempt `attempt`: decide, wait, resend — until an outcome that
   * is not retryable or a limit. Only calls that failed get here.
   */
  const retrying = async (
    next: Service,
    req: MeshRequest,
    attempt: number,
    firstRes: MeshResponse | undefined,
    firstError: unknown,
    firstOutcome: Outcome,
  ): Promise<MeshResponse> => {
    let res = firstRes;
    let error = firstError;
    let outcome = firstOutcome;
    for (;;) {
      if (req.call.noResend) {
        // Every endpoint refused this call (its TLS handshake failed): a resend would too.
        if (res !== undefined) return res;
        throw error;
      }
      const decision = decideRetry(policy, req, attempt + 1, res, error, outcome);
      if (!decision.retry) {
        if (decision.limit === "budget") reports.budgetExhausted(req, "retry");
        if (res !== undefined) return res;
        throw decision.error;
      }
      res?.dump().catch(() => {});
      reports.retry(req, attempt + 1, res, error, decision.delayMs);
      if (decision.delayMs > 0) await sleep(wheel, clock.now() + decision.delayMs, req.cancel);
      attempt++;
      const tryReq = { ...req, attempt };
      const startedAt = clock.now();
      let failed = false;
      res = undefined;
      error = undefined;
      try {
        res = await next(tryReq);
      } catch (e) {
        error = e;
        failed = true;
      }
      outcome = classifier(tryReq, res, error);
      record(outcome, startedAt);
      if (!isRetryable(outcome)) {
        if (failed) throw error;
        return res as MeshResponse;
      }
    }
  };

  /**
   * One attempt after another: the common path. The first attempt is a plain `.then` (no async
   * frame, no timer); only a retryable failure enters the retry loop.
   */
  const sequential = (next: Service, req: MeshRequest): Promise<MeshResponse> => {
    const startedAt = hedge !== false ? clock.now() : 0;
    return next(req).then(
      (res) => {
        const outcome = classifier(req, res, undefined);
        if (hedge !== false) record(outcome, startedAt);
        return isRetryable(outcome) ? retrying(next, req, 0, res, undefined, outcome) : res;
      },
      (error: unknown) => {
        const outcome = classifier(req, undefined, error);
        if (!isRetryable(outcome)) throw error;
        return retrying(next, req, 0, undefined, error, outcome);
      },
    );
  };

  const hedging: HedgeContext | null =
    hedge === false
      ? null
      : { config: hedge, policy, budget, latency, classifier, clock, wheel, events, reports, record };

  return (next, req) => {
    // Only idempotent requests with a body that can be sent again are hedged.
    if (hedging !== null && req.idempotent && isReplayable(req)) return hedgedCall(hedging, next, req);
    return sequential(next, req);
  };
}

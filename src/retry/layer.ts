/**
 * The retry layer: resends what the classifier calls `retryable`, within `maxAttempts`, the retry
 * budget and the call's deadline, with full-jitter backoff or the server's `Retry-After`; and
 * hedging — a hedge is a budgeted early retry, sent when an attempt has been outstanding longer
 * than a delay, to another endpoint, with the first good answer winning and the others
 * cancelled.
 *
 * It sits above balance so each resend picks again (preferring an endpoint not yet tried), and
 * below the deadline so every wait ends at the call's deadline.
 *
 * When retries end the caller gets the last response (a 503 stays a response) or an error saying
 * which limit ran out: `WEFT_ERR_ATTEMPTS`, `WEFT_ERR_BUDGET_EXHAUSTED`, `WEFT_ERR_TOTAL_TIMEOUT`.
 * An error that was not retryable passes through unchanged.
 */
import { Cancellation } from "../core/cancel.js";
import { isRetryable, type Classifier, type Outcome } from "../core/classifier.js";
import type { Clock, Random } from "../core/clock.js";
import { errorCode } from "../core/errors.js";
import type { ClientEventHub } from "../core/events.js";
import { isReplayable } from "../core/request.js";
import type { Layer, MeshRequest, MeshResponse, Service } from "../core/types.js";
import { wheelFor, type Scheduled } from "../core/wheel.js";
import type { RetryBudget } from "./budget.js";
import type { LatencyWindow } from "../core/latency.js";
import { decideRetry, type PolicyContext, type RetryConfig } from "./policy.js";
import { sleep } from "./sleep.js";

export interface HedgeConfig {
  /** Send a hedge after this long, ms (used until the percentile has enough samples). */
  readonly delayMs: number | undefined;
  /** Send a hedge at this percentile (0–100) of recent attempt latencies. */
  readonly percentile: number | undefined;
  /** Hedges per call. Default 1. */
  readonly maxHedges: number;
}

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

/** Samples needed before the percentile, rather than `delayMs`, sets the hedge delay. */
const MIN_PERCENTILE_SAMPLES = 50;
/** How often a call sent before the percentile is known checks whether it is known yet, ms. */
const WARMUP_RECHECK_MS = 10;
const SINGLE_ATTEMPT: RetryConfig = Object.freeze({
  maxAttempts: 1,
  backoff: { baseMs: 0, maxMs: 0 },
  retryAfterMaxMs: 0,
});

/** The reason a losing hedge is cancelled with; the classifier calls it ignorable. */
export class HedgeLostError extends Error {
  override readonly name = "HedgeLostError";
  constructor() {
    super("cancelled: another attempt of the same call answered first");
  }
}

export function retryLayer(ctx: RetryLayerContext): Layer {
  const { clock, classifier, events, budget, latency, hedge } = ctx;
  const wheel = wheelFor(clock);
  const policy: PolicyContext = {
    service: ctx.service,
    config: ctx.retry === false ? SINGLE_ATTEMPT : ctx.retry,
    budget,
    clock,
    random: ctx.random,
  };

  const reportRetry = (
    req: MeshRequest,
    attempt: number,
    res: MeshResponse | undefined,
    error: unknown,
    delayMs: number,
  ): void => {
    const note = req.call.note;
    if (!events.retry.active && note === null) return;
    const reason = res !== undefined ? String(res.status) : errorCode(error);
    note?.("weft.retry", {
      "weft.attempt": attempt,
      "weft.retry.reason": reason,
      "weft.retry.delay_ms": Math.round(delayMs),
    });
    if (events.retry.active)
      events.retry.emit({ service: ctx.service, method: req.method, path: req.path, attempt, reason, delayMs });
  };
  const reportBudget = (req: MeshRequest, kind: "retry" | "hedge"): void => {
    req.call.note?.("weft.budget_exhausted", { "weft.budget.kind": kind, "weft.attempts": req.call.attempts });
    if (events.budgetExhausted.active)
      events.budgetExhausted.emit({
        service: ctx.service,
        method: req.method,
        path: req.path,
        attempts: req.call.attempts,
        kind,
      });
  };
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
        if (decision.limit === "budget") reportBudget(req, "retry");
        if (res !== undefined) return res;
        throw decision.error;
      }
      res?.dump().catch(() => {});
      reportRetry(req, attempt + 1, res, error, decision.delayMs);
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

  const hedgeDelayMs = (): number => {
    if (hedge === false) return Infinity;
    if (hedge.percentile !== undefined && latency.count(clock.now()) >= MIN_PERCENTILE_SAMPLES) {
      return latency.percentile(hedge.percentile, clock.now());
    }
    return hedge.delayMs ?? Infinity;
  };

  /** Attempts that may overlap: hedges after a delay, retries when nothing is in flight. */
  const hedged = (next: Service, req: MeshRequest, config: HedgeConfig): Promise<MeshResponse> =>
    new Promise<MeshResponse>((resolve, reject) => {
      const running = new Set<Cancellation>();
      const callStart = clock.now();
      let done = false;
      let sent = 0;
      let hedges = 0;
      let timer: Scheduled | null = null;
      let last: { res: MeshResponse | undefined; error: unknown; failed: boolean } | null = null;
      let retryPending = false;

      const finish = (res: MeshResponse | undefined, error: unknown, failed: boolean): void => {
        done = true;
        timer?.cancel();
        const lost = new HedgeLostError();
        for (const cancel of running) cancel.abort(lost);
        running.clear();
        if (failed) reject(error);
        else resolve(res as MeshResponse);
      };

      const launch = (): void => {
        launchedAt = clock.now();
        const cancel = req.cancel !== null ? req.cancel.child() : new Cancellation();
        running.add(cancel);
        const attemptReq: MeshRequest = { ...req, attempt: sent++, cancel };
        const startedAt = clock.now();
        const settle = (res: MeshResponse | undefined, error: unknown, failed: boolean): void => {
          running.delete(cancel);
          cancel.release();
          if (done) {
            res?.dump().catch(() => {});
            return;
          }
          const outcome = classifier(attemptReq, res, error);
          record(outcome, startedAt);
          if (outcome === "success" || outcome === "ignorable") return finish(res, error, failed);
          // A failed attempt: another one in flight may still answer well.
          if (last?.res !== undefined && last.res !== res) last.res.dump().catch(() => {});
          last = { res, error, failed };
          // Others in flight (or a resend already scheduled) may still answer well: a plain
          // failure waits for them; a retryable one also sends a resend now if the policy allows,
          // so a hedge that hit a failing replica does not leave the call waiting on a slow one.
          const othersOut = running.size > 0;
          if (retryPending) return;
          if (outcome === "failure" || req.call.noResend) return othersOut ? undefined : finish(res, error, failed);
          const decision = decideRetry(policy, req, sent, res, error, outcome);
          if (!decision.retry) {
            if (othersOut) return;
            if (decision.limit === "budget") reportBudget(req, "retry");
            return res !== undefined ? finish(res, undefined, false) : finish(undefined, decision.error, true);
          }
          res?.dump().catch(() => {});
          last = null;
          reportRetry(req, sent, res, error, decision.delayMs);
          retryPending = true;
          sleep(wheel, clock.now() + decision.delayMs, req.cancel).then(
            () => {
              retryPending = false;
              if (done) return;
              launch();
              armHedge();
            },
            (reason: unknown) => {
              retryPending = false;
              if (!done) finish(undefined, reason, true);
            },
          );
        };
        let pending: Promise<MeshResponse>;
        try {
          pending = next(attemptReq);
        } catch (error) {
          settle(undefined, error, true);
          return;
        }
        pending.then(
          (res) => settle(res, undefined, false),
          (error: unknown) => settle(undefined, error, true),
        );
      };

      const onHedgeTimer = (): void => {
        timer = null;
        if (done || running.size === 0 || hedges >= config.maxHedges) return;
        if (budget !== null && !budget.tryWithdraw(clock.now())) {
          reportBudget(req, "hedge");
          return;
        }
        hedges++;
        req.call.hedges++;
        req.call.note?.("weft.hedge", {
          "weft.attempt": sent,
          "weft.hedge.after_ms": Math.round(clock.now() - callStart),
        });
        if (events.hedge.active)
          events.hedge.emit({
            service: ctx.service,
            method: req.method,
            path: req.path,
            attempt: sent,
            afterMs: clock.now() - callStart,
          });
        launch();
        armHedge();
      };

      // The hedge is due when the latest attempt has been out for the hedge delay. While a
      // percentile-only hedge has too few samples to know its delay, look again shortly, so calls
      // sent during warm-up are hedged as soon as the delay is known.
      let launchedAt = clock.now();
      const armHedge = (): void => {
        if (hedges >= config.maxHedges) return;
        const delayMs = hedgeDelayMs();
        const now = clock.now();
        const at =
          delayMs === Infinity
            ? config.percentile !== undefined
              ? now + WARMUP_RECHECK_MS
              : Infinity
            : Math.max(now, launchedAt + delayMs);
        if (!(at < req.deadline)) return;
        timer?.cancel();
        timer = wheel.schedule(at, delayMs === Infinity ? onWarmupRecheck : onHedgeTimer);
      };
      const onWarmupRecheck = (): void => {
        timer = null;
        if (!done && running.size > 0) armHedge();
      };

      launch();
      armHedge();
    });

  return (next) => (req) => {
    if (budget !== null) budget.deposit(req.call.startedAt >= 0 ? req.call.startedAt : clock.now());
    // Only idempotent requests with a body that can be sent again are hedged.
    if (hedge !== false && req.idempotent && isReplayable(req)) return hedged(next, req, hedge);
    return sequential(next, req);
  };
}

/**
 * Hedging (Dean & Barroso's "The Tail at Scale"; Finagle's backup requests): when an attempt has
 * been outstanding longer than a delay — fixed, or a percentile of recent attempt latencies — send
 * another to a different endpoint; the first good answer wins and the others are cancelled with
 * `HedgeLostError`. A hedge is a budgeted early retry: it takes a token from the retry budget, so
 * hedging cannot multiply the load on a slow service. Only idempotent requests with a replayable
 * body are hedged (the retry layer decides).
 *
 * While attempts overlap, a retryable failure of one does not wait for the others: it sends a
 * resend at once if the retry policy allows, so a hedge that hit a failing replica does not leave
 * the call waiting on a slow one. A plain failure waits for the attempts still out.
 *
 * One `HedgedCall` per call holds what the overlapping attempts share (the attempts running, the
 * hedge timer, the last failure kept in case nothing better comes); its methods are the events.
 */
import { Cancellation } from "../core/cancel.js";
import type { Classifier, Outcome } from "../core/classifier.js";
import type { Clock } from "../core/clock.js";
import { HedgeLostError } from "../core/errors.js";
import type { ClientEventHub } from "../core/events.js";
import type { LatencyWindow } from "../core/latency.js";
import type { MeshRequest, MeshResponse, Service } from "../core/types.js";
import type { DeadlineWheel, Scheduled } from "../core/wheel.js";
import type { RetryBudget } from "./budget.js";
import { decideRetry, type PolicyContext } from "./policy.js";
import type { RetryReports } from "./report.js";
import { sleep } from "../core/sleep.js";

export interface HedgeConfig {
  /** Send a hedge after this long, ms (used until the percentile has enough samples). */
  readonly delayMs: number | undefined;
  /** Send a hedge at this percentile (0–100) of recent attempt latencies. */
  readonly percentile: number | undefined;
  /** Hedges per call. Default 1. */
  readonly maxHedges: number;
}

/** What every hedged call of one client shares. */
export interface HedgeContext {
  readonly config: HedgeConfig;
  readonly policy: PolicyContext;
  readonly budget: RetryBudget | null;
  readonly latency: LatencyWindow;
  readonly classifier: Classifier;
  readonly clock: Clock;
  readonly wheel: DeadlineWheel;
  readonly events: ClientEventHub;
  readonly reports: RetryReports;
  /** Records a successful attempt's latency for the percentile. */
  record(outcome: Outcome, startedAt: number): void;
}

/** Samples needed before the percentile, rather than `delayMs`, sets the hedge delay. */
const MIN_PERCENTILE_SAMPLES = 50;
/** How often a call sent before the percentile is known checks whether it is known yet, ms. */
const WARMUP_RECHECK_MS = 10;

/** The hedge delay now, ms: the percentile once it has enough samples, else `delayMs` (Infinity: none yet). */
function hedgeDelayMs(ctx: HedgeContext): number {
  const { config, latency, clock } = ctx;
  if (config.percentile !== undefined && latency.count(clock.now()) >= MIN_PERCENTILE_SAMPLES) {
    return latency.percentile(config.percentile, clock.now());
  }
  return config.delayMs ?? Infinity;
}

/** Runs one call with attempts that may overlap: hedges after a delay, resends when the policy allows. */
export function hedgedCall(ctx: HedgeContext, next: Service, req: MeshRequest): Promise<MeshResponse> {
  return new Promise<MeshResponse>((resolve, reject) => new HedgedCall(ctx, next, req, resolve, reject).start());
}

/** What a failed attempt left, kept until another attempt answers better or none is left. */
interface LastFailure {
  readonly res: MeshResponse | undefined;
  readonly error: unknown;
  readonly failed: boolean;
}

class HedgedCall {
  readonly #running = new Set<Cancellation>();
  readonly #callStart: number;
  #done = false;
  /** Attempts sent (the next attempt's number). */
  #sent = 0;
  #hedges = 0;
  #timer: Scheduled | null = null;
  /** When the latest attempt went out: the hedge is due a delay after it. */
  #launchedAt: number;
  #last: LastFailure | null = null;
  /** A resend is waiting for its backoff. */
  #retryPending = false;

  constructor(
    private readonly ctx: HedgeContext,
    private readonly next: Service,
    private readonly req: MeshRequest,
    private readonly resolve: (res: MeshResponse) => void,
    private readonly reject: (error: unknown) => void,
  ) {
    this.#callStart = this.#launchedAt = ctx.clock.now();
  }

  start(): void {
    this.#launch();
    this.#armHedge();
  }

  #finish(res: MeshResponse | undefined, error: unknown, failed: boolean): void {
    this.#done = true;
    this.#timer?.cancel();
    const lost = new HedgeLostError();
    for (const cancel of this.#running) cancel.abort(lost);
    this.#running.clear();
    if (failed) this.reject(error);
    else this.resolve(res as MeshResponse);
  }

  #launch(): void {
    const { req, ctx } = this;
    this.#launchedAt = ctx.clock.now();
    const cancel = req.cancel !== null ? req.cancel.child() : new Cancellation();
    this.#running.add(cancel);
    const attemptReq: MeshRequest = { ...req, attempt: this.#sent++, cancel };
    const startedAt = ctx.clock.now();
    let pending: Promise<MeshResponse>;
    try {
      pending = this.next(attemptReq);
    } catch (error) {
      this.#settle(attemptReq, cancel, startedAt, undefined, error, true);
      return;
    }
    pending.then(
      (res) => this.#settle(attemptReq, cancel, startedAt, res, undefined, false),
      (error: unknown) => this.#settle(attemptReq, cancel, startedAt, undefined, error, true),
    );
  }

  #settle(
    attemptReq: MeshRequest,
    cancel: Cancellation,
    startedAt: number,
    res: MeshResponse | undefined,
    error: unknown,
    failed: boolean,
  ): void {
    const { req, ctx } = this;
    this.#running.delete(cancel);
    cancel.release();
    if (this.#done) {
      res?.dump().catch(() => {});
      return;
    }
    const outcome = ctx.classifier(attemptReq, res, error);
    ctx.record(outcome, startedAt);
    if (outcome === "success" || outcome === "ignorable") return this.#finish(res, error, failed);
    // A failed attempt: another one in flight may still answer well.
    if (this.#last?.res !== undefined && this.#last.res !== res) this.#last.res.dump().catch(() => {});
    this.#last = { res, error, failed };
    // Others in flight (or a resend already scheduled) may still answer well: a plain failure
    // waits for them; a retryable one also sends a resend now if the policy allows.
    const othersOut = this.#running.size > 0;
    if (this.#retryPending) return;
    if (outcome === "failure" || req.call.noResend) return othersOut ? undefined : this.#finish(res, error, failed);
    const decision = decideRetry(ctx.policy, req, this.#sent, res, error, outcome);
    if (!decision.retry) {
      if (othersOut) return;
      if (decision.limit === "budget") ctx.reports.budgetExhausted(req, "retry");
      return res !== undefined ? this.#finish(res, undefined, false) : this.#finish(undefined, decision.error, true);
    }
    res?.dump().catch(() => {});
    this.#last = null;
    ctx.reports.retry(req, this.#sent, res, error, decision.delayMs);
    this.#retryPending = true;
    sleep(ctx.wheel, ctx.clock.now() + decision.delayMs, req.cancel).then(
      () => {
        this.#retryPending = false;
        if (this.#done) return;
        this.#launch();
        this.#armHedge();
      },
      (reason: unknown) => {
        this.#retryPending = false;
        if (!this.#done) this.#finish(undefined, reason, true);
      },
    );
  }

  readonly #onHedgeTimer = (): void => {
    const { req, ctx } = this;
    this.#timer = null;
    if (this.#done || this.#running.size === 0 || this.#hedges >= ctx.config.maxHedges) return;
    if (ctx.budget !== null && !ctx.budget.tryWithdraw(ctx.clock.now())) {
      ctx.reports.budgetExhausted(req, "hedge");
      return;
    }
    this.#hedges++;
    req.call.hedges++;
    const afterMs = ctx.clock.now() - this.#callStart;
    req.call.note?.("weft.hedge", { "weft.attempt": this.#sent, "weft.hedge.after_ms": Math.round(afterMs) });
    if (ctx.events.hedge.active) {
      ctx.events.hedge.emit({
        service: req.service,
        method: req.method,
        path: req.path,
        attempt: this.#sent,
        afterMs,
      });
    }
    this.#launch();
    this.#armHedge();
  };

  /**
   * The hedge is due when the latest attempt has been out for the hedge delay. While a
   * percentile-only hedge has too few samples to know its delay, look again shortly, so calls
   * sent during warm-up are hedged as soon as the delay is known.
   */
  #armHedge(): void {
    const { ctx } = this;
    if (this.#hedges >= ctx.config.maxHedges) return;
    const delayMs = hedgeDelayMs(ctx);
    const now = ctx.clock.now();
    const at =
      delayMs === Infinity
        ? ctx.config.percentile !== undefined
          ? now + WARMUP_RECHECK_MS
          : Infinity
        : Math.max(now, this.#launchedAt + delayMs);
    if (!(at < this.req.deadline)) return;
    this.#timer?.cancel();
    this.#timer = ctx.wheel.schedule(at, delayMs === Infinity ? this.#onWarmupRecheck : this.#onHedgeTimer);
  }

  readonly #onWarmupRecheck = (): void => {
    this.#timer = null;
    if (!this.#done && this.#running.size > 0) this.#armHedge();
  };
}

/**
 * The decision after an attempt the classifier called `retryable`: send again (after how long),
 * or stop — and with what. Shared by the sequential and the hedged paths of the retry layer.
 *
 * Order of the checks: attempts left → the wait (Retry-After, else backoff) fits before the
 * deadline → a token from the budget (taken last, so a call that stops for another reason does
 * not spend one).
 */
import type { Clock, Random } from "../core/clock.js";
import {
  AttemptsExhaustedError,
  BreakerOpenError,
  BudgetExhaustedError,
  ClientClosedError,
  NoEndpointsError,
  TotalTimeoutError,
} from "../core/errors.js";
import { isReplayable } from "../core/request.js";
import { isRefusedStream, type Outcome } from "../core/classifier.js";
import type { MeshRequest, MeshResponse } from "../core/types.js";
import { backoffMs, type BackoffConfig } from "./backoff.js";
import type { RetryBudget } from "./budget.js";
import { parseRetryAfter } from "./retry-after.js";

/** Requeues of refused streams one call may make beyond its attempts (Finagle's RequeueFilter allows 25). */
const MAX_REQUEUES = 10;

export interface RetryConfig {
  /** Attempts per call, the first included. Default 3. */
  readonly maxAttempts: number;
  readonly backoff: BackoffConfig;
  /** Longest `Retry-After` honoured, ms; a longer one ends the call with its response. Default 30 000. */
  readonly retryAfterMaxMs: number;
}

export type RetryDecision =
  | { readonly retry: true; readonly delayMs: number }
  | {
      readonly retry: false;
      readonly error: unknown;
      readonly limit: "attempts" | "budget" | "deadline" | "body" | "unavailable";
    };

export interface PolicyContext {
  readonly service: string;
  readonly config: RetryConfig;
  readonly budget: RetryBudget | null;
  readonly clock: Clock;
  readonly random: Random;
}

/**
 * Decides whether the call goes on after a retryable failure. `attemptsMade` counts the attempts
 * sent so far. When it stops, `error` is what to throw if there is no response to return.
 *
 * An `overloaded` outcome (a server that shed the request) is resent after the usual backoff, not
 * after its `Retry-After`: that header speaks for the server that shed it, and the resend goes to
 * another endpoint where there is one.
 */
export function decideRetry(
  ctx: PolicyContext,
  req: MeshRequest,
  attemptsMade: number,
  res: MeshResponse | undefined,
  error: unknown,
  outcome: Outcome = "retryable",
): RetryDecision {
  const { config, clock } = ctx;
  // Nothing to send to — every breaker open, no endpoints, or the client closed: a resend would find the same.
  if (
    (error instanceof BreakerOpenError && error.endpoint === undefined) ||
    error instanceof NoEndpointsError ||
    error instanceof ClientClosedError
  ) {
    return { retry: false, limit: "unavailable", error };
  }
  // A refused stream (never processed) is requeued at once and does not count as an attempt, up
  // to MAX_REQUEUES a call: a server shedding its streams on shutdown must not use up a call's tries.
  const call = req.call;
  const requeue = isRefusedStream(error) && call.requeues < MAX_REQUEUES;
  const tries = attemptsMade - call.requeues;
  if (!requeue && tries >= config.maxAttempts) {
    return {
      retry: false,
      limit: "attempts",
      error: new AttemptsExhaustedError(ctx.service, { cause: error, attempts: attemptsMade }),
    };
  }
  // A stream body can be sent once; strings and bytes can be sent again.
  if (!isReplayable(req)) return { retry: false, limit: "body", error };
  let delayMs: number | undefined = requeue ? 0 : undefined;
  if (res !== undefined && outcome !== "overloaded" && (res.status === 429 || res.status === 503)) {
    delayMs = parseRetryAfter(res.headers["retry-after"], clock.wallNow());
    // A server asking for more than we are willing to wait gets its answer back at once.
    if (delayMs !== undefined && delayMs > config.retryAfterMaxMs) return { retry: false, limit: "deadline", error };
  }
  delayMs ??= backoffMs(config.backoff, tries, ctx.random());
  const leftMs = req.deadline - clock.now();
  if (delayMs >= leftMs) {
    const message = `no time left for a retry: waiting ${Math.round(delayMs)} ms would pass the deadline (${Math.max(0, Math.round(leftMs))} ms left)`;
    return {
      retry: false,
      limit: "deadline",
      error: new TotalTimeoutError(Math.round(leftMs), { cause: error, attempts: attemptsMade, message }),
    };
  }
  if (ctx.budget !== null && !ctx.budget.tryWithdraw(clock.now())) {
    return {
      retry: false,
      limit: "budget",
      error: new BudgetExhaustedError(ctx.service, { cause: error, attempts: attemptsMade }),
    };
  }
  if (requeue) call.requeues++;
  return { retry: true, delayMs };
}

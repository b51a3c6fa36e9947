/**
 * What the retry layer and hedging report of their decisions: a span event on the call (when it
 * is traced) and the typed event (when someone listens). Nothing is built for neither.
 */
import { errorCode } from "../core/errors.js";
import type { ClientEventHub } from "../core/events.js";
import type { MeshRequest, MeshResponse } from "../core/types.js";

export interface RetryReports {
  /** A resend of `req` as attempt number `attempt`, after `delayMs`. */
  retry(req: MeshRequest, attempt: number, res: MeshResponse | undefined, error: unknown, delayMs: number): void;
  /** The budget refused a resend or a hedge. */
  budgetExhausted(req: MeshRequest, kind: "retry" | "hedge"): void;
}

export function retryReports(service: string, events: ClientEventHub): RetryReports {
  return {
    retry(req, attempt, res, error, delayMs) {
      const note = req.call.note;
      if (!events.retry.active && note === null) return;
      const reason = res !== undefined ? String(res.status) : errorCode(error);
      note?.("weft.retry", {
        "weft.attempt": attempt,
        "weft.retry.reason": reason,
        "weft.retry.delay_ms": Math.round(delayMs),
      });
      if (events.retry.active)
        events.retry.emit({ service, method: req.method, path: req.path, attempt, reason, delayMs });
    },
    budgetExhausted(req, kind) {
      req.call.note?.("weft.budget_exhausted", { "weft.budget.kind": kind, "weft.attempts": req.call.attempts });
      if (events.budgetExhausted.active) {
        events.budgetExhausted.emit({ service, method: req.method, path: req.path, attempts: req.call.attempts, kind });
      }
    },
  };
}

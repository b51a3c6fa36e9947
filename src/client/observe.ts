/**
 * The outermost layer: counts every call as the caller sees it and reports its end. Counters are
 * plain integers (no allocation per call); the `callEnd` event object is built only when someone
 * listens.
 */
import type { Classifier } from "../core/classifier.js";
import { isFailure } from "../core/classifier.js";
import type { Clock } from "../core/clock.js";
import type { ClientEventHub } from "../core/events.js";
import type { CallStats } from "../core/call-stats.js";
import type { Layer, MeshRequest, MeshResponse } from "../core/types.js";

export class CallCounters {
  calls = 0;
  inflight = 0;
  successes = 0;
  failures = 0;
  /** Calls whose outcome says nothing about the service (4xx other than 429, a caller's abort). */
  ignorable = 0;
  /** Attempts sent (more than `calls` once retries and hedges land). */
  attempts = 0;
  timeouts = 0;
}

export function observeLayer(
  service: string,
  counters: CallCounters,
  stats: CallStats,
  classifier: Classifier,
  clock: Clock,
  events: ClientEventHub,
): Layer {
  const finish = (req: MeshRequest, start: number, res: MeshResponse | undefined, error: unknown): void => {
    counters.inflight--;
    const call = req.call;
    counters.attempts += call.attempts;
    const outcome = classifier(req, res, error);
    // The caller's view: a call that ended shed (overloaded) failed, though no endpoint is blamed.
    const verdict = outcome === "success" ? 1 : isFailure(outcome) || outcome === "overloaded" ? -1 : 0;
    if (verdict === 1) counters.successes++;
    else if (verdict === -1) counters.failures++;
    else counters.ignorable++;
    const now = clock.now();
    stats.record(now, now - start, verdict, Math.max(0, call.attempts - 1 - call.hedges), call.hedges);
    if (error !== undefined && typeof error === "object" && error !== null) {
      const code = (error as { code?: unknown }).code;
      if (code === "WEFT_ERR_TOTAL_TIMEOUT" || code === "WEFT_ERR_ATTEMPT_TIMEOUT") counters.timeouts++;
    }
    if (events.callEnd.active) {
      events.callEnd.emit({
        service,
        method: req.method,
        path: req.path,
        status: res?.status,
        error,
        outcome,
        durationMs: now - start,
        attempts: req.call.attempts,
        route: req.call.route?.name,
      });
    }
  };
  return (next) => (req) => {
    counters.calls++;
    counters.inflight++;
    const start = clock.now();
    req.call.startedAt = start;
    return next(req).then(
      (res) => {
        finish(req, start, res, undefined);
        return res;
      },
      (error: unknown) => {
        finish(req, start, undefined, error);
        throw error;
      },
    );
  };
}

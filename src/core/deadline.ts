/**
 * The total deadline: it bounds the whole call — every attempt, backoff, Retry-After wait and
 * queueing for a slot or a token (the per-attempt timeout, `attempt.ts`, bounds one try). Both are
 * entries in the shared deadline wheel that abort a `Cancellation`, so there is no timer and no
 * AbortController per call. A deadline bounds the time until the response headers arrive; the
 * body is then the caller's to read (and to cancel through its own signal).
 *
 * The promise returned settles at the deadline even if the layer below ignores cancellation; a
 * response that arrives after that is dumped so its connection is not leaked. Layers below learn
 * of the deadline through the aborted cancellation and may answer with a more precise error
 * (a call still queued for a concurrency slot fails with `WEFT_ERR_CONCURRENCY_LIMIT`).
 */
import type { Clock } from "./clock.js";
import { TotalTimeoutError } from "./errors.js";
import type { ClientEventHub } from "./events.js";
import type { Layer, MeshRequest, MeshResponse, Service } from "./types.js";
import { wheelFor } from "./wheel.js";
import type { DeadlineWheel } from "./wheel.js";

export interface DeadlineContext {
  readonly clock: Clock;
  readonly events: ClientEventHub;
  /** Client default, ms; `Infinity` when off. */
  readonly totalMs: number;
}

/** Resolves a per-call override against the client default (`false` turns it off). */
export function effectiveMs(override: number | false | undefined, fallback: number): number {
  if (override === undefined) return fallback;
  return override === false ? Infinity : override;
}

export function deadlineLayer(context: DeadlineContext): Layer {
  const { clock, events } = context;
  const wheel = wheelFor(clock);
  return (next) => (req) => {
    const totalMs = effectiveMs(req.timeout?.totalMs, context.totalMs);
    const startedAt = req.call.startedAt;
    // req.deadline is finite when the call inherits one (a request being served): the sooner wins.
    // The call's start when the observe layer read it in this pass: the deadline counts from it.
    const now = startedAt >= 0 ? startedAt : clock.now();
    const deadline = Math.min(req.deadline, now + totalMs);
    if (deadline === Infinity || req.cancel === null) return next(req);
    const cancel = req.cancel;
    const inherited = deadline < now + totalMs;
    const timeoutMs = inherited ? Math.round(deadline - now) : totalMs;
    return raceDeadline(next, deadline === req.deadline ? req : { ...req, deadline }, wheel, deadline, () => {
      const error = new TotalTimeoutError(timeoutMs, {
        attempts: req.attempt + 1,
        message: inherited
          ? `call exceeded the deadline it inherited from the request being served (${timeoutMs} ms left when it started)`
          : undefined,
      });
      if (events.timeout.active)
        events.timeout.emit({ service: req.service, method: req.method, path: req.path, kind: "total", timeoutMs });
      cancel.abort(error);
      return error;
    });
  };
}

/** Calls `next(req)` and settles with it, or with `onDeadline()`'s error at `at`, whichever is first. */
export function raceDeadline(
  next: Service,
  req: MeshRequest,
  wheel: DeadlineWheel,
  at: number,
  onDeadline: () => Error,
): Promise<MeshResponse> {
  return new Promise<MeshResponse>((resolve, reject) => {
    let settled = false;
    const entry = wheel.schedule(at, () => {
      if (settled) return;
      const error = onDeadline();
      // The layers below were just aborted with `error`; give them one turn to settle first, so
      // a more precise error (a queued call's WEFT_ERR_CONCURRENCY_LIMIT) reaches the caller.
      // A service that ignores cancellation is cut off regardless.
      setImmediate(() => {
        if (settled) return;
        settled = true;
        reject(error);
      });
    });
    let pending: Promise<MeshResponse>;
    try {
      pending = next(req);
    } catch (error) {
      settled = true;
      entry.cancel();
      reject(error);
      return;
    }
    pending.then(
      (res) => {
        entry.cancel();
        if (settled) {
          // Too late: the caller already has its timeout. Free the connection.
          res.dump().catch(() => {});
          return;
        }
        settled = true;
        resolve(res);
      },
      (error: unknown) => {
        entry.cancel();
        if (settled) return;
        settled = true;
        reject(error);
      },
    );
  });
}

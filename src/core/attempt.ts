/**
 * The per-attempt timeout (`timeout.attemptMs`) and deadline propagation: it bounds one try, on
 * the shared deadline wheel like the total deadline (`deadline.ts`), and sends the attempt's
 * remaining time to the server in the deadline header. It sits below balance so a timed-out
 * attempt counts against its endpoint's load, and above the transport so the header carries what
 * is left after every queue above it.
 */
import type { Clock } from "./clock.js";
import { effectiveMs, raceDeadline } from "./deadline.js";
import { AttemptTimeoutError } from "./errors.js";
import type { ClientEventHub } from "./events.js";
import type { Layer } from "./types.js";
import { wheelFor } from "./wheel.js";

export interface AttemptContext {
  readonly clock: Clock;
  readonly events: ClientEventHub;
  /** Client default, ms; `Infinity` when off. */
  readonly attemptMs: number;
  /**
   * Header that carries the attempt's remaining time (ms) to the server, so it can stop work
   * nobody will wait for (gRPC's `grpc-timeout`, Finagle's deadline propagation); `false`: none.
   */
  readonly header: string | false;
}

export function attemptLayer(context: AttemptContext): Layer {
  const { clock, events, header } = context;
  const wheel = wheelFor(clock);
  return (next) => (input) => {
    const attemptMs = effectiveMs(input.timeout?.attemptMs, context.attemptMs);
    // The attempt's start: its pick, when the balance layer just made it (one clock reading for
    // both); else now. Never the call's start: a queue or a backoff may have held it since.
    const picked = input.call.pickedAt;
    input.call.pickedAt = -1;
    const now = picked >= 0 ? picked : clock.now();
    const at = Math.min(now + attemptMs, input.deadline);
    const req =
      header !== false && at !== Infinity
        ? { ...input, headers: { ...input.headers, [header]: String(Math.max(0, Math.floor(at - now))) } }
        : input;
    // When the total deadline comes first, it is the one that fires (and names itself).
    if (attemptMs === Infinity || req.cancel === null || now + attemptMs >= req.deadline) return next(req);
    const cancel = req.cancel.child();
    const settle = raceDeadline(next, { ...req, cancel }, wheel, at, () => {
      const error = new AttemptTimeoutError(attemptMs, { attempts: req.attempt + 1 });
      if (events.timeout.active)
        events.timeout.emit({
          service: req.service,
          method: req.method,
          path: req.path,
          kind: "attempt",
          timeoutMs: attemptMs,
        });
      cancel.abort(error);
      return error;
    });
    return settle.then(
      (res) => {
        cancel.release();
        return res;
      },
      (error: unknown) => {
        cancel.release();
        throw error;
      },
    );
  };
}

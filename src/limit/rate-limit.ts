/**
 * The client-side rate limit: calls of this client leave at most `perSecond` per second on
 * average, with bursts of up to `burst` after a quiet spell (a token bucket, `token-bucket.ts`).
 * It keeps a client inside a quota the server enforces (a 429 costs a round trip; a token costs
 * nothing) and stops a retry storm or a runaway loop from flooding a dependency.
 *
 * A call that finds no token waits for the next one when that comes before its deadline and
 * fewer than `queue` calls are already waiting; otherwise it is turned away at once with
 * `RateLimitedError` — waiting for a token the call can no longer use would only delay its
 * failure. Waiters take their tokens in order of arrival (the bucket's debt is the line); each
 * wait is one entry in the shared deadline wheel and ends early if the call is cancelled, giving
 * its token back. The refill is computed from the clock when someone asks: no interval timer.
 *
 * The limit counts logical calls (it sits above retry): retries are bounded by the retry budget,
 * not by this bucket.
 */
import type { Clock } from "../core/clock.js";
import { RateLimitedError } from "../core/errors.js";
import type { ClientEventHub } from "../core/events.js";
import type { Layer, MeshRequest, MeshResponse, Service } from "../core/types.js";
import { wheelFor } from "../core/wheel.js";
import type { RateLimitConfig } from "./options.js";
import { TokenBucket } from "./token-bucket.js";
import { Waiter, type Run, type WaitOwner } from "./waiter.js";

export interface RateLimitLayerContext {
  /** The logical service, for errors and events. */
  readonly service: string;
  /** From `normalizeRateLimitOptions`. */
  readonly config: RateLimitConfig;
  readonly clock: Clock;
  /** `limited` is emitted for each call turned away. */
  readonly events: Pick<ClientEventHub, "limited">;
}

export interface RateLimitSnapshot {
  readonly perSecond: number;
  readonly burst: number;
  /** Tokens in the bucket now (negative: owed to waiting calls). */
  readonly tokens: number;
  /** Calls waiting for a token now. */
  readonly waiting: number;
  /** Calls turned away with `RateLimitedError` so far. */
  readonly rejected: number;
}

export interface RateLimiter {
  /** The stack entry: `{ role: "rate-limit", layer }`. */
  readonly layer: Layer;
  /** Plain JSON for `client.snapshot()`. */
  snapshot(): RateLimitSnapshot;
}

/**
 * Builds the rate limit. Its bucket is shared by every service the layer wraps: build one per
 * client (or share one between clients to give them a common rate).
 * @example const r = rateLimitLayer({ service, config: { perSecond: 100, burst: 100, queue: 100 }, clock, events });
 */
export function rateLimitLayer(context: RateLimitLayerContext): RateLimiter {
  const { service, config, clock, events } = context;
  const wheel = wheelFor(clock);
  const bucket = new TokenBucket(config, clock.now());
  let waiting = 0;
  let rejected = 0;

  const run: Run = (next, req) => {
    try {
      return next(req);
    } catch (error) {
      return Promise.reject(error);
    }
  };

  const turnAway = (req: MeshRequest, reason: string, cause?: unknown): RateLimitedError => {
    rejected++;
    if (events.limited.active)
      events.limited.emit({ service, method: req.method, path: req.path, kind: "rate", reason });
    return new RateLimitedError(service, { cause, attempts: req.call.attempts });
  };

  const owner: WaitOwner = {
    onTime(waiter) {
      waiting--;
      waiter.proceed(run);
    },
    onCancel(waiter, reason) {
      waiting--;
      const now = clock.now();
      bucket.giveBack(now);
      // The total deadline aborting the call is still the deadline, not the caller giving up.
      if (now >= waiter.req.deadline)
        waiter.fail(turnAway(waiter.req, "deadline reached while waiting for a token", reason));
      else waiter.fail(reason);
    },
  };

  const wait = (next: Service, req: MeshRequest, now: number): Promise<MeshResponse> => {
    const cancel = req.cancel;
    if (cancel !== null && cancel.aborted) return Promise.reject(cancel.reason);
    if (waiting >= config.queue) {
      const reason = config.queue === 0 ? "no token and no queue" : `no token and ${waiting} calls already waiting`;
      return Promise.reject(turnAway(req, reason));
    }
    const readyAt = now + bucket.waitMs(now);
    // A token at (or after) the deadline leaves the call no time to run. The wheel fires on
    // whole-ms ticks, so compare the tick the wait would end on.
    if (Math.ceil(readyAt) >= req.deadline) {
      return Promise.reject(turnAway(req, `next token in ${Math.ceil(readyAt - now)} ms, not before the deadline`));
    }
    bucket.reserve(now);
    waiting++;
    return new Waiter(owner, req, next, now, wheel, readyAt).promise;
  };

  const layer: Layer = (next) => (req) => {
    const now = clock.now();
    if (bucket.tryTake(now)) return next(req);
    return wait(next, req, now);
  };

  return {
    layer,
    snapshot: () => ({
      perSecond: config.perSecond,
      burst: config.burst,
      tokens: bucket.tokens(clock.now()),
      waiting,
      rejected,
    }),
  };
}

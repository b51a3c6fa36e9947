/**
 * The concurrency limit: at most `limit` calls of this client in flight below it, up to `queue`
 * more waiting in line, the rest turned away at once.
 *
 * The bulkhead comes from Hystrix (a semaphore per dependency, named after a ship's watertight
 * compartments): one slow dependency can then hold at most `limit` of the process's calls, and
 * the rest of the application keeps working instead of piling up sockets, memory and callers
 * behind it. With `adaptive: true` the limit is not fixed but learned from latency and drops by
 * Gradient2 (`gradient.ts`, from Netflix's concurrency-limits, in the line of TCP Vegas), which
 * finds how many concurrent calls the service absorbs before it starts queueing them.
 *
 * Why a queued call waits at most until its deadline: a call still in line when its caller has
 * stopped waiting would only add load for nobody, and the caller must get its answer (an error)
 * on time. So a waiter leaves the line at `req.deadline` (an entry in the shared deadline wheel)
 * or when its `Cancellation` aborts, whichever is first — `ConcurrencyLimitError` for the
 * deadline, the caller's own reason unchanged for a caller's cancel. A full queue is rejected at
 * once: queueing past `queue` would only turn overload into latency.
 *
 * A slot is held from the moment the call goes below until the layer below settles (response
 * headers or an error): the deadline, too, bounds the time to headers, and a body nobody reads
 * must not hold a slot forever. A call held past its total deadline keeps its slot until the
 * layers below actually let go (they are cancelled by then), so `inflight` is the truth.
 *
 * Invariant: the line is non-empty only while `inflight ≥ limit`; every release, and every
 * change of the adaptive limit, is followed by a drain. So the hot path — a free slot — is one
 * compare, one increment and the `.then` that releases; no clock read, timer or closure in fixed
 * mode.
 */
import type { Classifier } from "../core/classifier.js";
import { isFailure } from "../core/classifier.js";
import type { Clock } from "../core/clock.js";
import { ConcurrencyLimitError } from "../core/errors.js";
import type { ClientEventHub } from "../core/events.js";
import type { Layer, MeshRequest, MeshResponse, Service } from "../core/types.js";
import { wheelFor } from "../core/wheel.js";
import { Gradient2Limit } from "./gradient.js";
import type { ConcurrencyConfig } from "./options.js";
import { LinkedQueue } from "./queue.js";
import { Waiter, type Run, type WaitOwner } from "./waiter.js";

export interface ConcurrencyLayerContext {
  /** The logical service, for errors and events. */
  readonly service: string;
  /** From `normalizeConcurrencyOptions`. */
  readonly config: ConcurrencyConfig;
  readonly clock: Clock;
  /** Decides which outcomes are drops for the adaptive limit (failure or retryable). */
  readonly classifier: Classifier;
  /** `limited` is emitted for each call turned away (queue full, deadline reached in line). */
  readonly events: Pick<ClientEventHub, "limited">;
}

export interface ConcurrencySnapshot {
  readonly adaptive: boolean;
  /** The limit now (fixed, or Gradient2's current estimate). */
  readonly limit: number;
  /** Calls below this layer now. */
  readonly inflight: number;
  /** Calls waiting for a slot now. */
  readonly queued: number;
  /** Calls turned away with `ConcurrencyLimitError` so far. */
  readonly rejected: number;
}

export interface ConcurrencyLimiter {
  /** The stack entry: `{ role: "concurrency", layer }`. */
  readonly layer: Layer;
  /** Plain JSON for `client.snapshot()`. */
  snapshot(): ConcurrencySnapshot;
}

/**
 * Builds the concurrency limit (bulkhead, or adaptive with `config.adaptive`). Its state is shared
 * by every service the layer wraps, so build one per client.
 * @example const c = concurrencyLayer({ service, config: normalizeConcurrencyOptions({ limit: 64 }) as ConcurrencyConfig, clock, classifier, events });
 */
export function concurrencyLayer(context: ConcurrencyLayerContext): ConcurrencyLimiter {
  const { service, config, clock, classifier, events } = context;
  const wheel = wheelFor(clock);
  const line = new LinkedQueue<Waiter>();
  const maxQueued = config.queue;
  const gradient = config.adaptive ? new Gradient2Limit(config) : null;
  let limit = config.adaptive ? (gradient as Gradient2Limit).limit : config.limit;
  let inflight = 0;
  let rejected = 0;

  /** Starts waiters, oldest first, while there are free slots. */
  const drain = (): void => {
    while (inflight < limit) {
      const waiter = line.shift();
      if (waiter === undefined) return;
      inflight++;
      waiter.proceed(run);
    }
  };

  const release = (): void => {
    inflight--;
    if (line.size > 0) drain();
  };

  // Fixed mode: the settle handlers need no per-call state, so they are made once.
  const releaseWith = (res: MeshResponse): MeshResponse => {
    release();
    return res;
  };
  const releaseThrow = (error: unknown): never => {
    release();
    throw error;
  };

  const runFixed: Run = (next, req) => {
    let pending: Promise<MeshResponse>;
    try {
      pending = next(req);
    } catch (error) {
      release();
      return Promise.reject(error);
    }
    return pending.then(releaseWith, releaseThrow);
  };

  /** Adaptive mode: feeds the call's latency and outcome to Gradient2, then frees the slot. */
  const settle = (
    req: MeshRequest,
    start: number,
    inflightAtStart: number,
    res: MeshResponse | undefined,
    error: unknown,
  ): void => {
    try {
      const outcome = classifier(req, res, error);
      // A caller's abort says nothing about the service; an ignorable response (a 404) is still
      // work the service did, at its usual speed.
      if (res !== undefined || outcome !== "ignorable") {
        // A shed answer is the plainest drop there is (Netflix's onDropped).
        limit = (gradient as Gradient2Limit).sample(
          clock.now() - start,
          inflightAtStart,
          isFailure(outcome) || outcome === "overloaded",
        );
      }
    } finally {
      // After the sample, so a raised limit admits waiters in this same drain.
      release();
    }
  };

  // Kept apart from `settle` on purpose: a per-call closure that holds the settle logic itself
  // (rather than calling this shared function) measured ~3× slower on Node 20.
  const runAdaptive: Run = (next, req) => {
    const start = clock.now();
    const inflightAtStart = inflight;
    let pending: Promise<MeshResponse>;
    try {
      pending = next(req);
    } catch (error) {
      settle(req, start, inflightAtStart, undefined, error);
      return Promise.reject(error);
    }
    return pending.then(
      (res) => {
        settle(req, start, inflightAtStart, res, undefined);
        return res;
      },
      (error: unknown) => {
        settle(req, start, inflightAtStart, undefined, error);
        throw error;
      },
    );
  };

  const run: Run = gradient === null ? runFixed : runAdaptive;

  const turnAway = (req: MeshRequest, reason: string, cause?: unknown): ConcurrencyLimitError => {
    rejected++;
    if (events.limited.active)
      events.limited.emit({ service, method: req.method, path: req.path, kind: "concurrency", reason });
    return new ConcurrencyLimitError(service, reason, { cause, attempts: req.call.attempts });
  };

  const leaveAtDeadline = (waiter: Waiter, cause: unknown): void => {
    line.remove(waiter);
    const waitedMs = Math.round(clock.now() - waiter.sinceMs);
    waiter.fail(turnAway(waiter.req, `deadline reached after ${waitedMs} ms in the queue`, cause));
  };

  const owner: WaitOwner = {
    onTime: (waiter) => leaveAtDeadline(waiter, undefined),
    onCancel(waiter, reason) {
      // The total deadline aborts the call's cancellation at the same moment our own entry
      // would fire; that is still the deadline, not the caller giving up.
      if (clock.now() >= waiter.req.deadline) return leaveAtDeadline(waiter, reason);
      line.remove(waiter);
      waiter.fail(reason);
    },
  };

  const enqueue = (next: Service, req: MeshRequest): Promise<MeshResponse> => {
    const cancel = req.cancel;
    if (cancel !== null && cancel.aborted) return Promise.reject(cancel.reason);
    if (line.size >= maxQueued) {
      const reason =
        maxQueued === 0
          ? `${inflight} calls in flight (limit ${limit}) and no queue`
          : `queue full (${inflight} in flight, limit ${limit}; ${line.size} queued)`;
      return Promise.reject(turnAway(req, reason));
    }
    const now = clock.now();
    if (now >= req.deadline) return Promise.reject(turnAway(req, "deadline reached before a slot was free"));
    const waiter = new Waiter(owner, req, next, now, wheel, req.deadline);
    line.push(waiter);
    return waiter.promise;
  };

  const layer: Layer = (next) => (req) => {
    if (inflight < limit) {
      inflight++;
      return run(next, req);
    }
    return enqueue(next, req);
  };

  return {
    layer,
    snapshot: () => ({ adaptive: gradient !== null, limit, inflight, queued: line.size, rejected }),
  };
}

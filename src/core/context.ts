/**
 * The request context: what a unit of inbound work (an HTTP request served by `weft/server`, a
 * queue message, a job) hands to every outbound call made while doing it — its deadline and its
 * cancellation — carried by `AsyncLocalStorage`, so the application passes nothing.
 *
 * Why: a deadline that every hop must forward by hand dies at the first hop that forgets it.
 * gRPC and Finagle propagate deadlines inside the framework; Node has no such framework, but it
 * has `AsyncLocalStorage`, which follows a request through every `await`, callback and timer.
 * A client call made inside `runWithContext(ctx, fn)` starts with `ctx`'s remaining time as its
 * deadline (under its own `timeout.totalMs`, whichever is sooner) and is cancelled when `ctx` is:
 * when the inbound caller goes away, nobody is left to wait for the calls made for it.
 *
 * Cost: nothing until a context is first entered (an idle `AsyncLocalStorage` answers `getStore()`
 * in ~1 ns). Once one is, Node 20 runs a promise hook for every promise in the process (~60 ns per
 * promise here) — the same tax OpenTelemetry's context manager already charges.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { Cancellation } from "./cancel.js";
import { systemClock, type Clock } from "./clock.js";
import { TotalTimeoutError } from "./errors.js";
import { wheelFor, type Scheduled } from "./wheel.js";

export interface RequestContextInit {
  /** The time the work may take from now, ms. Default: no deadline. */
  readonly timeoutMs?: number;
  /** An absolute deadline on `clock` (ms); the sooner of this and `timeoutMs` wins. */
  readonly deadline?: number;
  /** The work's cancellation: aborting it cancels every call made in the context. Default: a new one. */
  readonly cancel?: Cancellation;
  /** Aborts the context too (a caller's signal, a job's). */
  readonly signal?: AbortSignal | null;
  /** The clock `deadline` is read on. Default: the system clock. */
  readonly clock?: Clock;
}

/**
 * One unit of work's deadline and cancellation. `weft/server` makes one per inbound request;
 * `runWithContext` makes one for any other kind of work.
 */
export class RequestContext {
  /** Absolute deadline on `clock`, ms; `Infinity` for none. */
  readonly deadline: number;
  readonly clock: Clock;
  /** Aborted when the work is no longer wanted: its caller went away, or its owner cancelled it. */
  readonly cancel: Cancellation;
  #controller: AbortController | null = null;
  #timer: Scheduled | null = null;

  constructor(init: RequestContextInit = {}) {
    this.clock = init.clock ?? systemClock;
    const fromTimeout = init.timeoutMs === undefined ? Infinity : this.clock.now() + init.timeoutMs;
    this.deadline = Math.min(fromTimeout, init.deadline ?? Infinity);
    this.cancel = init.cancel ?? new Cancellation();
    const signal = init.signal;
    if (signal != null) {
      if (signal.aborted) this.cancel.abort(signal.reason);
      else {
        const onAbort = (): void => this.cancel.abort(signal.reason);
        signal.addEventListener("abort", onAbort, { once: true });
        this.cancel.addEventListener("abort", () => signal.removeEventListener("abort", onAbort));
      }
    }
  }

  /** Time left before the deadline, ms (`Infinity` without one; ≤ 0 once it has passed). */
  remainingMs(): number {
    return this.deadline - this.clock.now();
  }

  /** True once the context was cancelled (its caller went away). */
  get aborted(): boolean {
    return this.cancel.aborted;
  }

  /**
   * An `AbortSignal` that aborts when the context is cancelled or its deadline passes — for work
   * that is not a weft call (a database query, `fetch`). Made on first read: a request whose
   * handler never asks pays nothing.
   */
  get signal(): AbortSignal {
    if (this.#controller !== null) return this.#controller.signal;
    const controller = (this.#controller = new AbortController());
    if (this.cancel.aborted) controller.abort(this.cancel.reason);
    else this.cancel.addEventListener("abort", () => controller.abort(this.cancel.reason));
    if (this.deadline !== Infinity && !controller.signal.aborted) {
      const deadline = this.deadline;
      this.#timer = wheelFor(this.clock).schedule(deadline, () => {
        this.#timer = null;
        controller.abort(new TotalTimeoutError(0, { message: "the request's deadline passed" }));
      });
    }
    return controller.signal;
  }

  /** Releases the deadline timer behind `signal` (the owner calls it when the work is over). */
  end(): void {
    this.#timer?.cancel();
    this.#timer = null;
  }
}

const storage = new AsyncLocalStorage<RequestContext>();

/** The context the current code runs in, if any. */
export function currentContext(): RequestContext | undefined {
  return storage.getStore();
}

/**
 * Runs `fn` in a context: every weft call made inside it (through any `await`, callback or timer)
 * inherits the context's deadline and is cancelled with it. Pass a `RequestContext`, or the
 * fields of one.
 * @example
 * await runWithContext({ timeoutMs: 300, signal: job.signal }, () => handle(job));
 */
export function runWithContext<T>(context: RequestContext | RequestContextInit, fn: () => T): T {
  return storage.run(context instanceof RequestContext ? context : new RequestContext(context), fn);
}

/**
 * Runs `fn` outside any context: calls made inside start fresh (background work that must outlive
 * the request that started it).
 */
export function runWithoutContext<T>(fn: () => T): T {
  return storage.exit(fn);
}

/**
 * The deadline a call made now inherits, on `clock`: the context's, converted when the context
 * reads another clock (a test's fake clock beside the system one).
 */
export function inheritedDeadline(context: RequestContext, clock: Clock): number {
  if (context.deadline === Infinity) return Infinity;
  return context.clock === clock ? context.deadline : clock.now() + context.remainingMs();
}

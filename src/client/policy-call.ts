/**
 * The terminal of a policy's stack: one run of the user's function. It takes the place of a
 * client's transport (and counts the run as `balance` counts an attempt), so every layer above
 * — retry, hedging, the breaker, the attempt timeout — runs unchanged over a function call.
 *
 * The function's value travels up in a small envelope (the layers speak `MeshResponse`), and the
 * caller gets the value back. Its error travels up as it is, marked as the function's (so the
 * classifier tells it from the policy's own refusals) — unless the run was cancelled first: then
 * what it threw is a consequence, and the cancellation's reason (an attempt or total timeout, the
 * caller's abort, a hedge that lost) is what the run failed with, as a transport's abort is.
 */
import { toAbortSignal, type Cancellation } from "../core/cancel.js";
import type { Classifier } from "../core/classifier.js";
import type { Clock } from "../core/clock.js";
import type { ClientEventHub } from "../core/events.js";
import { CallState, type MeshRequest, type MeshResponse, type Service } from "../core/types.js";
import { markFunctionError } from "./policy-classifier.js";

/** A function's resolved value as it travels up the stack (the layers speak `MeshResponse`). */
export interface ValueEnvelope extends MeshResponse {
  readonly value: unknown;
}

/**
 * What `policy.execute` runs. It gets an `AbortSignal` (aborted when its run times out, the call's
 * deadline passes, the caller aborts or a hedge wins) only if it declares a parameter, and its
 * run's number (0 for the first).
 */
export type PolicyFunction<T> = (signal: AbortSignal, attempt: number) => T | PromiseLike<T>;

/** One call's state: the client's `CallState` and the function the terminal runs. */
export class PolicyCall extends CallState {
  constructor(
    readonly fn: PolicyFunction<unknown>,
    /**
     * Someone outside the stack can cancel the call (the caller's signal, a request context):
     * each run must end when it is cancelled. The deadlines end theirs already (`raceDeadline`),
     * and a hedge does not wait for its loser.
     */
    readonly external: boolean,
  ) {
    super();
  }
}

const DONE: Promise<void> = Promise.resolve();
const NO_HEADERS = Object.freeze({});

/** A resolved value on its way up the stack: a `MeshResponse` with the value and nothing to read. */
class Envelope implements ValueEnvelope {
  constructor(readonly value: unknown) {}
  get status(): number {
    return 200;
  }
  get headers(): Readonly<Record<string, never>> {
    return NO_HEADERS;
  }
  get body(): null {
    return null;
  }
  get bodyUsed(): boolean {
    return false;
  }
  text(): Promise<string> {
    return Promise.resolve(String(this.value));
  }
  json<T>(): Promise<T> {
    return Promise.resolve(this.value as T);
  }
  arrayBuffer(): Promise<ArrayBuffer> {
    return Promise.reject(new TypeError("a policy's result is a value, not bytes"));
  }
  dump(): Promise<void> {
    return DONE;
  }
}

export function envelope(value: unknown): MeshResponse {
  return new Envelope(value);
}

/** The caller's value out of the envelope. */
export function valueOf(res: MeshResponse): unknown {
  return (res as ValueEnvelope).value;
}

/** What a run failed with: the cancellation's reason once it was cancelled, else the function's own error. */
function failure(cancel: Cancellation | null, error: unknown): unknown {
  if (cancel !== null && cancel.aborted) return cancel.reason;
  markFunctionError(error);
  return error;
}

function rejectRun(error: unknown): never {
  throw failure(null, error);
}

/** Runs the function once, with a signal when it declares a parameter. */
function run(req: MeshRequest, call: PolicyCall): Promise<MeshResponse> {
  const fn = call.fn;
  const cancel = req.cancel;
  // Cancelled on its way down (between a backoff and the run): the function does not start.
  if (cancel !== null && cancel.aborted) return Promise.reject(cancel.reason);
  let result: unknown;
  try {
    // A run that cannot be cancelled still gets a signal of its own (a shared one would collect
    // the listeners every run adds and never removes).
    result =
      fn.length === 0
        ? (fn as () => unknown)()
        : fn(cancel === null ? new AbortController().signal : (toAbortSignal(cancel) as AbortSignal), req.attempt);
  } catch (error) {
    return Promise.reject(failure(cancel, error));
  }
  const pending = Promise.resolve(result);
  if (cancel === null) return pending.then(envelope, rejectRun);
  if (!call.external)
    return pending.then(envelope, (error: unknown) => {
      throw failure(cancel, error);
    });
  // The run ends when it is cancelled, whether or not the function heeds its signal (it may not
  // take one): the caller's abort settles the call at once, as a timeout does.
  return new Promise<MeshResponse>((resolve, reject) => {
    const onAbort = (): void => reject(cancel.reason);
    cancel.addEventListener("abort", onAbort);
    pending.then(
      (value) => {
        cancel.removeEventListener("abort", onAbort);
        resolve(envelope(value));
      },
      (error: unknown) => {
        cancel.removeEventListener("abort", onAbort);
        reject(failure(cancel, error));
      },
    );
  });
}

/** The terminal service: counts the run and, when someone listens, reports its start and end. */
export function callTerminal(events: ClientEventHub, classifier: Classifier, clock: Clock): Service {
  return (req) => {
    const call = req.call as PolicyCall;
    call.attempts++;
    if (!events.attemptStart.active && !events.attemptEnd.active) return run(req, call);
    const start = clock.now();
    const base = { service: req.service, method: req.method, path: req.path, endpoint: "", attempt: req.attempt };
    if (events.attemptStart.active) events.attemptStart.emit(base);
    const end = (res: MeshResponse | undefined, error: unknown): void => {
      if (!events.attemptEnd.active) return;
      const outcome = classifier(req, res, error);
      events.attemptEnd.emit({ ...base, status: res?.status, error, outcome, durationMs: clock.now() - start });
    };
    return run(req, call).then(
      (res) => (end(res, undefined), res),
      (error: unknown) => {
        end(undefined, error);
        throw error;
      },
    );
  };
}

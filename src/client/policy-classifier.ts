/**
 * A policy's classifier: the one verdict every layer reads (observe, retry, the breaker, the
 * adaptive limit), so they agree. Weft's own verdicts come first — the caller's abort and a hedge
 * that lost are ignorable; the total deadline and the policy's own refusals (an open breaker, a
 * full queue, no token, no budget or time left for a retry) are failures never retried — then the
 * user's rule on the function's result: by default cockatiel's `handleAll` (a value succeeds, any
 * error is retryable), or `retryOn` / `classifier`. A run that timed out is the function's failure
 * to answer in time: the user's rule decides it too.
 */
import type { Classifier, Outcome } from "../core/classifier.js";
import { AttemptTimeoutError, TotalTimeoutError } from "../core/errors.js";
import type { ValueEnvelope } from "./policy-call.js";

/** What `classifier` is asked about: the function's value, or what it threw (an attempt timeout included). */
export type PolicyResult =
  { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: unknown };

/**
 * Errors the user's function threw (or rejected with): told apart from the policy's own (an open
 * breaker, a full queue) by identity, so an error a weft client inside the function threw is the
 * function's. Marked on the failure path only; a thrown primitive is always the function's.
 */
const functionErrors = new WeakSet<object>();

export function markFunctionError(error: unknown): void {
  if (typeof error === "object" && error !== null) functionErrors.add(error);
}

function isFunctionError(error: unknown): boolean {
  return typeof error !== "object" || error === null || functionErrors.has(error);
}

/**
 * The policy's classifier, in the shape every layer reads: weft's own verdicts first (the caller's
 * abort, the deadline, weft's limits), then what the user's rule says of the function's result
 * (`null`: cockatiel's `handleAll` — a value succeeds, an error is retryable). Every layer asks it
 * (observe, retry, the breaker, the adaptive limit), so they agree.
 */
export function policyClassifier(classify: ((result: PolicyResult) => Outcome) | null): Classifier {
  return (req, res, error) => {
    if (res !== undefined)
      return classify === null ? "success" : classify({ ok: true, value: (res as ValueEnvelope).value });
    const cancel = req.cancel;
    // Cancelled from above: the total deadline is a failure; the caller's abort or a hedge that lost, nothing.
    if (cancel !== null && cancel.aborted && cancel.reason === error)
      return error instanceof TotalTimeoutError ? "failure" : "ignorable";
    // A run of the function that took too long is the function's failure to answer: its rule decides.
    if (error instanceof AttemptTimeoutError || isFunctionError(error))
      return classify === null ? "retryable" : classify({ ok: false, error });
    // The policy's own refusals and limits (an open breaker, a full queue, no token, no budget or
    // time left for a retry): failures, never retried.
    return "failure";
  };
}

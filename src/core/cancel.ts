/**
 * One cancellation mechanism for the whole stack. A `Cancellation` is aborted by the caller's
 * signal, by the total deadline, or (for an attempt's child) by the per-try timeout; every wait
 * and every transport listens to it.
 *
 * It is deliberately not an `AbortController`: on these machines creating one and adding an abort
 * listener costs ~8 µs per call (FACTS.md). This is a plain object with the subset of the
 * `AbortSignal` shape that undici accepts as a request `signal` (`aborted`, `reason`,
 * `addEventListener`, `removeEventListener`), so the transport cancels through undici's own
 * dispatch handler without a second signal.
 */
type Listener = () => void;

export class Cancellation {
  aborted = false;
  reason: unknown = undefined;
  // Most cancellations have zero or one listener: keep the common case allocation-free.
  #one: Listener | null = null;
  #many: Listener[] | null = null;
  #parent: Cancellation | null = null;
  #onParentAbort: Listener | null = null;

  /** A child is aborted when this one is, and can also be aborted alone (a per-try timeout). */
  child(): Cancellation {
    const child = new Cancellation();
    if (this.aborted) {
      child.abort(this.reason);
      return child;
    }
    child.#parent = this;
    child.#onParentAbort = () => child.abort(this.reason);
    this.addEventListener("abort", child.#onParentAbort);
    return child;
  }

  /** Detaches a child from its parent once its attempt is over, so long calls do not accumulate listeners. */
  release(): void {
    const parent = this.#parent;
    if (parent !== null && this.#onParentAbort !== null) parent.removeEventListener("abort", this.#onParentAbort);
    this.#parent = null;
    this.#onParentAbort = null;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.release();
    const one = this.#one;
    const many = this.#many;
    this.#one = null;
    this.#many = null;
    if (one !== null) one();
    if (many !== null) for (const listener of many) listener();
  }

  /** Throws the abort reason when aborted: a check for code between awaits. */
  throwIfAborted(): void {
    if (this.aborted) throw this.reason;
  }

  addEventListener(_type: "abort", listener: Listener, _options?: unknown): void {
    if (this.aborted) return;
    if (this.#one === null && this.#many === null) this.#one = listener;
    else if (this.#many === null) {
      this.#many = [this.#one as Listener, listener];
      this.#one = null;
    } else this.#many.push(listener);
  }

  removeEventListener(_type: "abort", listener: Listener): void {
    if (this.#one === listener) this.#one = null;
    else if (this.#many !== null) {
      const at = this.#many.indexOf(listener);
      if (at !== -1) this.#many.splice(at, 1);
    }
  }
}

/**
 * Links a caller's `AbortSignal` to a cancellation. Returns the function that unlinks it (call it
 * when the exchange is over, so a long-lived signal does not collect listeners).
 */
export function linkSignal(signal: AbortSignal, cancel: Cancellation): () => void {
  if (signal.aborted) {
    cancel.abort(signal.reason);
    return noop;
  }
  const onAbort = (): void => cancel.abort(signal.reason);
  signal.addEventListener("abort", onAbort, { once: true });
  return () => signal.removeEventListener("abort", onAbort);
}

function noop(): void {}

/**
 * An `AbortSignal` that aborts with `cancel` — for transports whose client takes nothing cheaper
 * (global fetch, got). Throws at once when `cancel` is already aborted; `undefined` without one.
 * One `AbortController` and one listener per attempt (~8 µs here): the undici transport avoids
 * both through its dispatch handler.
 */
export function toAbortSignal(cancel: Cancellation | null): AbortSignal | undefined {
  if (cancel === null) return undefined;
  cancel.throwIfAborted();
  const controller = new AbortController();
  cancel.addEventListener("abort", () => controller.abort(cancel.reason));
  return controller.signal;
}

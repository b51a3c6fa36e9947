/**
 * The undici transport's response: weft's own dispatch handler, handed to `pool.dispatch()`,
 * which is also the `MeshResponse` the caller gets — one object per attempt where undici's
 * `request()` makes a handler, a `Readable` body, a parsed headers object and an abort listener.
 *
 * - The body is `incoming-body.ts`'s (shared with the HTTP/2 transport): chunks kept until read,
 *   `text()`/`json()`/`arrayBuffer()` without a stream, a WHATWG stream only when `.body` is read,
 *   the socket paused past the high-water mark (undici pauses when `onData` returns false).
 * - Headers stay in undici's raw form (`Buffer[]`, name/value pairs) until `.headers` is read.
 * - Cancellation: the attempt's `Cancellation` gets one listener from `onConnect` to the end of
 *   the response, which aborts through the dispatch's own `abort` — no signal, no controller.
 *
 * It speaks undici's long-standing handler interface (`onConnect`/`onHeaders`/`onData`/
 * `onComplete`/`onError`), which undici's Client calls directly; the newer `onRequestStart`
 * interface is wrapped by undici in an adapter that parses the headers eagerly.
 */
import type { Cancellation } from "../core/cancel.js";
import type { MeshResponse, ResponseHeaderMap } from "../core/types.js";
import { IncomingBody, Phase } from "./incoming-body.js";

type Resolve = (res: MeshResponse) => void;
type Reject = (error: unknown) => void;

export class DispatchResponse extends IncomingBody implements MeshResponse {
  #resolve: Resolve | null;
  #reject: Reject | null;
  readonly #cancel: Cancellation | null;
  readonly #explain: ((error: unknown) => unknown) | null;
  #abort: ((reason?: Error) => void) | null = null;
  #onCancel: (() => void) | null = null;
  #rawHeaders: Buffer[] | null = null;
  #headers: ResponseHeaderMap | null = null;
  #resume: (() => void) | null = null;
  /** Set by `pauseSource()` during `onData`: undici pauses the socket when `onData` returns false. */
  #pauseAsked = false;

  /**
   * `explain`: turns a failure before the response (a TLS handshake's, say) into the error the
   * caller gets; null to pass undici's as it is.
   */
  constructor(
    resolve: Resolve,
    reject: Reject,
    cancel: Cancellation | null,
    explain: ((error: unknown) => unknown) | null = null,
  ) {
    super();
    this.#resolve = resolve;
    this.#reject = reject;
    this.#cancel = cancel;
    this.#explain = explain;
  }

  // --- the dispatch handler -------------------------------------------------------------------

  onConnect(abort: (reason?: Error) => void): void {
    this.#abort = abort;
    const cancel = this.#cancel;
    if (cancel === null) return;
    if (cancel.aborted) {
      abort(cancel.reason as Error);
      return;
    }
    if (this.#onCancel === null) {
      this.#onCancel = () => this.#abort?.(cancel.reason as Error);
      cancel.addEventListener("abort", this.#onCancel);
    }
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    // 1xx informational responses (100 Continue, 103 Early Hints) precede the real one.
    if (statusCode < 200) return true;
    this.status = statusCode;
    this.#rawHeaders = rawHeaders;
    this.#resume = resume;
    this.phase = Phase.Body;
    const resolve = this.#resolve;
    this.#resolve = null;
    this.#reject = null;
    resolve?.(this);
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.#pauseAsked = false;
    this.received(chunk);
    return !this.#pauseAsked;
  }

  onComplete(): void {
    this.#detach();
    this.finished();
  }

  onError(error: Error): void {
    this.#detach();
    if (this.phase !== Phase.Head) return this.failed(error);
    this.phase = Phase.Failed;
    const reject = this.#reject;
    this.#resolve = null;
    this.#reject = null;
    reject?.(this.#explain === null ? error : this.#explain(error));
  }

  // --- the response ---------------------------------------------------------------------------

  get headers(): ResponseHeaderMap {
    return (this.#headers ??= parseRawHeaders(this.#rawHeaders));
  }

  // --- the source, for the body ---------------------------------------------------------------

  protected pauseSource(): void {
    this.#pauseAsked = true;
  }

  protected resumeSource(): void {
    this.#resume?.();
  }

  protected resetSource(reason: Error): void {
    // Not worth keeping: close the connection (undici then calls onError, and the body fails).
    this.#pauseAsked = true;
    this.#abort?.(reason);
  }

  #detach(): void {
    const onCancel = this.#onCancel;
    if (onCancel !== null) {
      this.#onCancel = null;
      this.#cancel?.removeEventListener("abort", onCancel);
    }
  }
}

/** undici's raw `[name, value, name, value…]` as lower-case names; a repeated name's values in an array. */
function parseRawHeaders(raw: Buffer[] | null): ResponseHeaderMap {
  const headers: Record<string, string | string[]> = {};
  if (raw === null) return headers;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as Buffer).toString("latin1").toLowerCase();
    const value = (raw[i + 1] as Buffer).toString("latin1");
    const seen = Object.hasOwn(headers, name) ? headers[name] : undefined;
    if (seen === undefined) {
      if (name === "__proto__")
        Object.defineProperty(headers, name, { value, enumerable: true, configurable: true, writable: true });
      else headers[name] = value;
    } else if (typeof seen === "string") headers[name] = [seen, value];
    else seen.push(value);
  }
  return headers;
}

/**
 * The undici transport's response: weft's own dispatch handler, handed to `pool.dispatch()`,
 * which is also the `MeshResponse` the caller gets — one object per attempt where undici's
 * `request()` makes a handler, a `Readable` body, a parsed headers object and an abort listener.
 *
 * - Body chunks are kept in a list until someone reads them; `text()`, `json()` and
 *   `arrayBuffer()` take them without a stream. A WHATWG stream is made only when `.body` is
 *   read. Nobody reading: the list holds at most `HIGH_WATER_BYTES`, then the socket is paused
 *   (as a Readable's high-water mark would) until a reader or `dump()` comes.
 * - Headers stay in undici's raw form (`Buffer[]`, name/value pairs) until `.headers` is read.
 * - Cancellation: the attempt's `Cancellation` gets one listener from `onConnect` to the end of
 *   the response, which aborts through the dispatch's own `abort` — no signal, no controller.
 * - `onBodyEnd` callbacks run when the body ended, failed, or was dumped — no stream listener.
 *
 * It speaks undici's long-standing handler interface (`onConnect`/`onHeaders`/`onData`/
 * `onComplete`/`onError`), which undici's Client calls directly; the newer `onRequestStart`
 * interface is wrapped by undici in an adapter that parses the headers eagerly.
 */
import { BodyUsedError } from "../core/errors.js";
import type { Cancellation } from "../core/cancel.js";
import { isNullBodyStatus } from "../core/response.js";
import type { MeshResponse, ResponseHeaderMap } from "../core/types.js";

/** Bytes kept for a body nobody reads yet before the socket is paused (a Readable's default is 64 KiB). */
const HIGH_WATER_BYTES = 64 * 1024;
/** `dump()` reads at most this much of a body still arriving; past it, the connection is closed instead. */
const DUMP_LIMIT_BYTES = 128 * 1024;

type Resolve = (res: MeshResponse) => void;
type Reject = (error: unknown) => void;

const enum Phase {
  /** Waiting for the status line and headers. */
  Head,
  /** Headers in, body arriving. */
  Body,
  /** Body complete. */
  Done,
  /** Failed (before or after the headers). */
  Failed,
}

/** What is waiting for the whole body: a `text()`, `json()` or `arrayBuffer()`. */
interface Collector {
  readonly kind: 0 | 1 | 2;
  readonly resolve: (value: never) => void;
  readonly reject: Reject;
}

export class DispatchResponse implements MeshResponse {
  status = 0;
  #phase = Phase.Head;
  #resolve: Resolve | null;
  #reject: Reject | null;
  readonly #cancel: Cancellation | null;
  readonly #explain: ((error: unknown) => unknown) | null;
  #abort: ((reason?: Error) => void) | null = null;
  #onCancel: (() => void) | null = null;
  #rawHeaders: Buffer[] | null = null;
  #headers: ResponseHeaderMap | null = null;
  #chunks: Buffer[] = [];
  #bytes = 0;
  #resume: (() => void) | null = null;
  #paused = false;
  #used = false;
  #dumping = false;
  #dumped: (() => void) | null = null;
  #error: unknown = undefined;
  #collector: Collector | null = null;
  #controller: ReadableStreamDefaultController<Uint8Array> | null = null;
  #stream: ReadableStream<Uint8Array> | null | undefined = undefined;
  #onEnd: (() => void) | (() => void)[] | null = null;

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
    this.#phase = Phase.Body;
    const resolve = this.#resolve;
    this.#resolve = null;
    this.#reject = null;
    resolve?.(this);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.#dumping) {
      this.#bytes += chunk.length;
      if (this.#bytes > DUMP_LIMIT_BYTES) {
        // Not worth reading to the end to keep the connection: close it instead.
        this.#abort?.(Object.assign(new Error("body dumped"), { code: "WEFT_BODY_DUMPED" }));
        return false;
      }
      return true;
    }
    const controller = this.#controller;
    if (controller !== null) {
      controller.enqueue(chunk);
      if ((controller.desiredSize ?? 1) > 0) return true;
      this.#paused = true;
      return false;
    }
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    if (this.#collector === null && this.#bytes >= HIGH_WATER_BYTES) {
      this.#paused = true;
      return false;
    }
    return true;
  }

  onComplete(): void {
    this.#phase = Phase.Done;
    this.#detach();
    const collector = this.#collector;
    if (collector !== null) {
      this.#collector = null;
      this.#deliver(collector);
    }
    const controller = this.#controller;
    if (controller !== null) {
      this.#controller = null;
      controller.close();
    }
    if (this.#dumping) this.#chunks = [];
    this.#dumped?.();
    this.#ended();
  }

  onError(error: Error): void {
    const before = this.#phase === Phase.Head;
    this.#phase = Phase.Failed;
    this.#error = error;
    this.#detach();
    if (before) {
      const reject = this.#reject;
      this.#resolve = null;
      this.#reject = null;
      reject?.(this.#explain === null ? error : this.#explain(error));
      return;
    }
    const collector = this.#collector;
    if (collector !== null) {
      this.#collector = null;
      collector.reject(error);
    }
    const controller = this.#controller;
    if (controller !== null) {
      this.#controller = null;
      controller.error(error);
    }
    this.#chunks = [];
    this.#dumped?.();
    this.#ended();
  }

  // --- the response ---------------------------------------------------------------------------

  get headers(): ResponseHeaderMap {
    return (this.#headers ??= parseRawHeaders(this.#rawHeaders));
  }

  get bodyUsed(): boolean {
    return this.#used;
  }

  get body(): ReadableStream<Uint8Array> | null {
    if (this.#stream !== undefined) return this.#stream;
    if (isNullBodyStatus(this.status)) {
      void this.dump();
      this.#stream = null;
      return null;
    }
    if (this.#used) throw new BodyUsedError();
    this.#used = true;
    const chunks = this.#chunks;
    this.#chunks = [];
    this.#stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        for (const chunk of chunks) controller.enqueue(chunk);
        if (this.#phase === Phase.Done) controller.close();
        else if (this.#phase === Phase.Failed) controller.error(this.#error);
        else this.#controller = controller;
      },
      pull: () => this.#unpause(),
      cancel: (reason) => {
        this.#controller = null;
        if (this.#phase === Phase.Body)
          this.#abort?.(
            reason instanceof Error
              ? reason
              : Object.assign(new Error("response body cancelled"), { code: "WEFT_BODY_CANCELLED" }),
          );
      },
    });
    return this.#stream;
  }

  text(): Promise<string> {
    return this.#collect(0);
  }

  json<T = unknown>(): Promise<T> {
    return this.#collect(1);
  }

  arrayBuffer(): Promise<ArrayBuffer> {
    return this.#collect(2);
  }

  dump(): Promise<void> {
    if (this.#stream !== undefined && this.#stream !== null) {
      if (this.#phase !== Phase.Body) return Promise.resolve();
      return this.#stream.cancel().catch(() => {});
    }
    this.#used = true;
    this.#chunks = [];
    if (this.#phase !== Phase.Body) return Promise.resolve();
    this.#dumping = true;
    if (this.#dumped !== null) return this.#waitDumped();
    const done = this.#waitDumped();
    this.#unpause();
    return done;
  }

  takeBody(): Uint8Array | null {
    if (this.#phase !== Phase.Done || this.#used || this.#stream !== undefined || isNullBodyStatus(this.status))
      return null;
    this.#used = true;
    const chunks = this.#chunks;
    this.#chunks = [];
    return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, this.#bytes);
  }

  onBodyEnd(callback: () => void): void {
    if (this.#phase === Phase.Done || this.#phase === Phase.Failed) {
      queueMicrotask(callback);
      return;
    }
    const current = this.#onEnd;
    if (current === null) this.#onEnd = callback;
    else if (typeof current === "function") this.#onEnd = [current, callback];
    else current.push(callback);
  }

  // --- internals ------------------------------------------------------------------------------

  #collect<T>(kind: 0 | 1 | 2): Promise<T> {
    if (this.#used) return Promise.reject(new BodyUsedError());
    this.#used = true;
    if (this.#phase === Phase.Failed) return Promise.reject(this.#error);
    return new Promise<T>((resolve, reject) => {
      const collector: Collector = { kind, resolve, reject };
      if (this.#phase === Phase.Done) return this.#deliver(collector);
      this.#collector = collector;
      this.#unpause();
    });
  }

  #deliver(collector: Collector): void {
    const chunks = this.#chunks;
    this.#chunks = [];
    const bytes = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, this.#bytes);
    try {
      if (collector.kind === 2) {
        const copy = new Uint8Array(bytes.length);
        copy.set(bytes);
        collector.resolve(copy.buffer as never);
        return;
      }
      // UTF-8 without a byte-order mark, as fetch's text() decodes.
      const start = bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
      const text = bytes.toString("utf8", start);
      collector.resolve((collector.kind === 1 ? JSON.parse(text) : text) as never);
    } catch (error) {
      collector.reject(error);
    }
  }

  #unpause(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#resume?.();
  }

  #waitDumped(): Promise<void> {
    return new Promise<void>((resolve) => {
      const previous = this.#dumped;
      this.#dumped = () => {
        this.#dumped = null;
        previous?.();
        resolve();
      };
    });
  }

  #detach(): void {
    const onCancel = this.#onCancel;
    if (onCancel !== null) {
      this.#onCancel = null;
      this.#cancel?.removeEventListener("abort", onCancel);
    }
  }

  #ended(): void {
    const callbacks = this.#onEnd;
    this.#onEnd = null;
    if (callbacks === null) return;
    if (typeof callbacks === "function") callbacks();
    else for (const callback of callbacks) callback();
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

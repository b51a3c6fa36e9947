/**
 * The body half of a transport's response, shared by the undici transport (`dispatch.ts`) and the
 * HTTP/2 transport (`http2-response.ts`): chunks kept until someone reads them. `text()`, `json()`
 * and `arrayBuffer()` take the chunks without a stream; a WHATWG stream is made only when `.body`
 * is read; nobody reading, at most `HIGH_WATER_BYTES` are kept and then the source is paused (a
 * socket, as a Readable's high-water mark would; an HTTP/2 stream, whose flow-control window then
 * fills, so the server stops sending on that stream only). `onBodyEnd` callbacks run when the body
 * ended, failed, was dumped or cancelled — no stream listener.
 *
 * The subclass feeds it (`received`, `finished`, `failed`) and says how to pause, resume and reset
 * its source; it owns the head (status, headers) and what happens before it.
 */
import { BodyUsedError } from "../core/errors.js";
import { isNullBodyStatus } from "../core/response.js";

/** Bytes kept for a body nobody reads yet before the source is paused (a Readable's default is 64 KiB). */
const HIGH_WATER_BYTES = 64 * 1024;
/** `dump()` reads at most this much of a body still arriving; past it, the source is reset instead (a connection closed, a stream reset). */
const DUMP_LIMIT_BYTES = 128 * 1024;

export const enum Phase {
  /** Waiting for the response headers. */
  Head,
  /** Headers in, body arriving. */
  Body,
  /** Body complete. */
  Done,
  /** Failed (before or after the headers). */
  Failed,
}

/** What is waiting for the whole body: a `text()` (0), `json()` (1) or `arrayBuffer()` (2). */
interface Collector {
  readonly kind: 0 | 1 | 2;
  readonly resolve: (value: never) => void;
  readonly reject: (error: unknown) => void;
}

export abstract class IncomingBody {
  status = 0;
  protected phase = Phase.Head;
  #chunks: Buffer[] = [];
  #bytes = 0;
  #paused = false;
  #used = false;
  #dumping = false;
  #dumped: (() => void) | null = null;
  #error: unknown = undefined;
  #collector: Collector | null = null;
  #controller: ReadableStreamDefaultController<Uint8Array> | null = null;
  #stream: ReadableStream<Uint8Array> | null | undefined = undefined;
  #onEnd: (() => void) | (() => void)[] | null = null;

  /** Stops the source until `resumeSource()`. */
  protected abstract pauseSource(): void;
  protected abstract resumeSource(): void;
  /** Abandons the rest of the body (a cancelled stream, a dump past its limit); `failed` follows. */
  protected abstract resetSource(reason: Error): void;

  // --- fed by the subclass --------------------------------------------------------------------

  /** A body chunk arrived. */
  protected received(chunk: Buffer): void {
    if (this.#dumping) {
      this.#bytes += chunk.length;
      // Not worth reading to the end: reset the source instead (an HTTP/2 stream's session is unaffected).
      if (this.#bytes > DUMP_LIMIT_BYTES)
        this.resetSource(Object.assign(new Error("body dumped"), { code: "WEFT_BODY_DUMPED" }));
      return;
    }
    const controller = this.#controller;
    if (controller !== null) {
      controller.enqueue(chunk);
      if ((controller.desiredSize ?? 1) <= 0) this.#pause();
      return;
    }
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    if (this.#collector === null && this.#bytes >= HIGH_WATER_BYTES) this.#pause();
  }

  /** The body ended. */
  protected finished(): void {
    this.phase = Phase.Done;
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

  /** The body failed after the headers. */
  protected failed(error: unknown): void {
    this.phase = Phase.Failed;
    this.#error = error;
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

  // --- the response's body --------------------------------------------------------------------

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
        if (this.phase === Phase.Done) controller.close();
        else if (this.phase === Phase.Failed) controller.error(this.#error);
        else this.#controller = controller;
      },
      pull: () => this.#unpause(),
      cancel: (reason) => {
        this.#controller = null;
        if (this.phase === Phase.Body)
          this.resetSource(
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
      if (this.phase !== Phase.Body) return Promise.resolve();
      return this.#stream.cancel().catch(() => {});
    }
    this.#used = true;
    this.#chunks = [];
    if (this.phase !== Phase.Body) return Promise.resolve();
    this.#dumping = true;
    if (this.#dumped !== null) return this.#waitDumped();
    const done = this.#waitDumped();
    this.#unpause();
    return done;
  }

  takeBody(): Uint8Array | null {
    if (this.phase !== Phase.Done || this.#used || this.#stream !== undefined || isNullBodyStatus(this.status))
      return null;
    this.#used = true;
    const chunks = this.#chunks;
    this.#chunks = [];
    return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, this.#bytes);
  }

  onBodyEnd(callback: () => void): void {
    if (this.phase === Phase.Done || this.phase === Phase.Failed) {
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
    if (this.phase === Phase.Failed) return Promise.reject(this.#error);
    return new Promise<T>((resolve, reject) => {
      const collector: Collector = { kind, resolve, reject };
      if (this.phase === Phase.Done) return this.#deliver(collector);
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
        // Several chunks were joined into a buffer of their own (Buffer.concat allocates one for
        // anything past 4 KiB): hand its ArrayBuffer over — a second 1 MiB copy cost ~0.3 ms.
        // One chunk, or a small join from Node's shared pool, is copied out.
        if (chunks.length > 1 && bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.length) {
          collector.resolve(bytes.buffer as never);
          return;
        }
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

  /** Asked again for every chunk that arrives past the mark (undici's `onData` answers each one). */
  #pause(): void {
    this.#paused = true;
    this.pauseSource();
  }

  #unpause(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.resumeSource();
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

  #ended(): void {
    const callbacks = this.#onEnd;
    this.#onEnd = null;
    if (callbacks === null) return;
    if (typeof callbacks === "function") callbacks();
    else for (const callback of callbacks) callback();
  }
}

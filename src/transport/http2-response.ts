/**
 * The HTTP/2 transport's response: one object per stream that listens to the stream and is the
 * `MeshResponse` the caller gets, as `dispatch.ts` is for undici. The body half (chunks kept until
 * read, a WHATWG stream only when `.body` is read, backpressure, `dump()`, `onBodyEnd`) is
 * `http2-body.ts`; this file is the stream's side.
 *
 * - Headers stay in Node's form until `.headers` is read (then without the pseudo-headers).
 * - Cancellation: one listener on the attempt's `Cancellation` from the request to the end of the
 *   body; it resets this stream with `NGHTTP2_CANCEL` — one RST_STREAM frame — and never touches
 *   the session, so a lost hedge or a per-try timeout costs no connection.
 * - A paused body (nobody reading) stops taking data from the stream: its flow-control window
 *   fills and the server stops sending on that stream only.
 * - A stream the server did not process — above the last stream id of its GOAWAY, or reset with
 *   REFUSED_STREAM — fails with `RefusedStreamError`, which the classifier treats as never sent.
 * - The stream's listeners are module functions that find this object through a symbol on the
 *   stream, so a call allocates no closure for them.
 */
import { constants, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http2";
import { Readable } from "node:stream";
import type { Cancellation } from "../core/cancel.js";
import { RefusedStreamError } from "../core/errors.js";
import type { MeshBody, MeshResponse, ResponseHeaderMap } from "../core/types.js";
import { nodeBody } from "./body.js";
import { IncomingBody, Phase } from "./incoming-body.js";
import type { SessionSlot, StreamJob } from "./http2-slot.js";

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = constants;
const END_STREAM = { endStream: true };
const OPEN_STREAM = { endStream: false };

/** What a response needs from the session its stream runs on. */
export interface StreamHost {
  readonly origin: string;
  /** The last stream id of the GOAWAY the session received; -1 before any. */
  readonly goawayLastId: number;
  /** Called once, when the stream has closed. */
  streamClosed(): void;
  /** A failure before the response (a TLS handshake's, say) as the error the caller gets. */
  explain(error: unknown): unknown;
}

const RESPONSE = Symbol("weft.http2.response");
type Tagged = ClientHttp2Stream & { [RESPONSE]: Http2Response };

function onResponse(this: Tagged, headers: IncomingHttpHeaders): void {
  this[RESPONSE].onResponse(headers);
}
function onData(this: Tagged, chunk: Buffer): void {
  this[RESPONSE].onData(chunk);
}
function onEnd(this: Tagged): void {
  this[RESPONSE].onEnd();
}
function onError(this: Tagged, error: Error): void {
  this[RESPONSE].onFailure(error);
}
function onClose(this: Tagged): void {
  this[RESPONSE].onClose();
}

export class Http2Response extends IncomingBody implements MeshResponse, StreamJob {
  #resolve: ((res: MeshResponse) => void) | null;
  #reject: ((error: unknown) => void) | null;
  readonly #cancel: Cancellation | null;
  #onCancel: (() => void) | null = null;
  /** The request, until its stream is opened. */
  #request: OutgoingHttpHeaders | null;
  #requestBody: MeshBody | null;
  #stream: ClientHttp2Stream | null = null;
  #host: StreamHost | null = null;
  /** A one-shot request body being piped into the stream, destroyed if the stream fails first. */
  #source: Readable | null = null;
  #rawHeaders: IncomingHttpHeaders | null = null;
  #headers: ResponseHeaderMap | null = null;

  /** Listens to the attempt's cancellation from now on: a stream still waiting for a session can be cancelled too. */
  constructor(
    resolve: (res: MeshResponse) => void,
    reject: (error: unknown) => void,
    cancel: Cancellation | null,
    request: OutgoingHttpHeaders,
    body: MeshBody | null,
  ) {
    super();
    this.#resolve = resolve;
    this.#reject = reject;
    this.#cancel = cancel;
    this.#request = request;
    this.#requestBody = body;
    if (cancel !== null) {
      this.#onCancel = () => this.abandon(cancel.reason);
      cancel.addEventListener("abort", this.#onCancel);
    }
  }

  /** True once answered in full or failed (a waiting stream that was cancelled is skipped). */
  get settled(): boolean {
    return this.phase === Phase.Done || this.phase === Phase.Failed;
  }

  /** Opens the stream on `slot`'s session, listens to it and sends the body. */
  open(slot: SessionSlot): void {
    const body = this.#requestBody;
    let stream: ClientHttp2Stream;
    try {
      stream = slot.session.request(this.#request as OutgoingHttpHeaders, body === null ? END_STREAM : OPEN_STREAM);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === "ERR_HTTP2_GOAWAY_SESSION" || code === "ERR_HTTP2_INVALID_SESSION") return slot.reroute(this);
      return this.#fail(error);
    }
    this.#request = null;
    this.#requestBody = null;
    slot.streamOpened();
    this.#stream = stream;
    this.#host = slot;
    (stream as Tagged)[RESPONSE] = this;
    stream.on("response", onResponse);
    stream.on("data", onData);
    stream.on("end", onEnd);
    stream.on("error", onError);
    stream.on("close", onClose);
    if (body === null) return;
    if (typeof body === "string" || body instanceof Uint8Array) {
      stream.end(body);
      return;
    }
    const node = nodeBody(body) as Readable | AsyncIterable<Uint8Array>;
    const source = node instanceof Readable ? node : Readable.from(node, { objectMode: false });
    this.#source = source;
    source.once("error", (error: unknown) => this.abandon(error));
    source.pipe(stream);
  }

  /** Fails a stream that was never sent (its origin's sessions closed, or never connected). */
  fail(error: unknown): void {
    if (this.phase === Phase.Head) this.#fail(error);
  }

  /** Resets the stream (`NGHTTP2_CANCEL`, the session stays) and fails the call with `reason` as it is. */
  abandon(reason: unknown): void {
    if (this.phase === Phase.Done || this.phase === Phase.Failed) return;
    this.#stream?.close(NGHTTP2_CANCEL);
    this.#fail(reason);
  }

  // --- the stream's events ----------------------------------------------------------------------

  onResponse(headers: IncomingHttpHeaders): void {
    const status = headers[":status"] as unknown as number;
    // 1xx informational responses come as 'headers' events; this guards the final one only.
    if (status < 200 || this.phase !== Phase.Head) return;
    this.status = status;
    this.#rawHeaders = headers;
    this.phase = Phase.Body;
    const resolve = this.#resolve;
    this.#resolve = null;
    this.#reject = null;
    resolve?.(this);
  }

  onData(chunk: Buffer): void {
    this.received(chunk);
  }

  onEnd(): void {
    if (this.phase !== Phase.Body) return;
    this.#detach();
    this.finished();
  }

  onFailure(error: Error): void {
    if (this.phase === Phase.Done || this.phase === Phase.Failed) return;
    this.#fail(this.#explain(error));
  }

  onClose(): void {
    this.#host?.streamClosed();
    // Closed before the body ended without an 'error': reset by the server with NO_ERROR or CANCEL.
    if (this.phase === Phase.Head || this.phase === Phase.Body) this.#fail(this.#explain(undefined));
  }

  // --- the response -----------------------------------------------------------------------------

  get headers(): ResponseHeaderMap {
    return (this.#headers ??= responseHeaders(this.#rawHeaders));
  }

  protected pauseSource(): void {
    this.#stream?.pause();
  }

  protected resumeSource(): void {
    this.#stream?.resume();
  }

  protected resetSource(reason: Error): void {
    this.abandon(reason);
  }

  // --- internals --------------------------------------------------------------------------------

  /** What the caller gets for a stream that failed with `error` (undefined: reset without one). */
  #explain(error: unknown): unknown {
    const stream = this.#stream as ClientHttp2Stream;
    const host = this.#host as StreamHost;
    const id = stream.id;
    // RFC 9113 §6.8: streams above the GOAWAY's last stream id were not processed.
    if (host.goawayLastId >= 0 && (id === undefined || id > host.goawayLastId))
      return new RefusedStreamError(host.origin, id, host.goawayLastId, error);
    if (stream.rstCode === NGHTTP2_REFUSED_STREAM) return new RefusedStreamError(host.origin, id, undefined, error);
    if (error === undefined)
      return Object.assign(
        new Error(
          `HTTP/2 stream ${id ?? "(unsent)"} to ${host.origin} was reset by the server (code ${stream.rstCode})`,
        ),
        { code: "ERR_HTTP2_STREAM_ERROR", rstCode: stream.rstCode },
      );
    return this.phase === Phase.Head ? host.explain(error) : error;
  }

  #fail(failure: unknown): void {
    this.#detach();
    const source = this.#source;
    if (source !== null && !source.readableEnded) source.destroy();
    if (this.phase === Phase.Head) {
      this.phase = Phase.Failed;
      const reject = this.#reject;
      this.#resolve = null;
      this.#reject = null;
      reject?.(failure);
      return;
    }
    this.failed(failure);
  }

  #detach(): void {
    const onCancel = this.#onCancel;
    if (onCancel !== null) {
      this.#onCancel = null;
      this.#cancel?.removeEventListener("abort", onCancel);
    }
  }
}

/** Node's response headers without the pseudo-headers (`:status`); names are lower-case already. */
function responseHeaders(raw: IncomingHttpHeaders | null): ResponseHeaderMap {
  const headers: Record<string, string | string[]> = {};
  if (raw === null) return headers;
  for (const name in raw) {
    const value = raw[name];
    if (name.charCodeAt(0) === 58 /* ":" */ || value === undefined) continue;
    if (name === "__proto__")
      Object.defineProperty(headers, name, { value, enumerable: true, configurable: true, writable: true });
    else headers[name] = value;
  }
  return headers;
}

/**
 * A gRPC outcome as the `MeshResponse` the stack passes up: the HTTP-like `status` the classifier
 * reads (status.ts), the gRPC code, details, header metadata and trailers the caller gets back,
 * and the response message(s) as bytes — deserialized only at the top, once, by the method that
 * asked (grpcClient), never per attempt.
 *
 * `headers` (metadata and trailers as HTTP headers, with `grpc-status`, `grpc-message` and the
 * pushback as `retry-after`) is built on first read: the classifier reads it only for a 429 or a
 * 503, tracing for its status code; a call that succeeds without either builds nothing.
 *
 * `GrpcStreamResponse` is a server-streaming or bidi call that has answered (its first message,
 * or for bidi its header metadata): the messages still arriving stay in grpc-js's stream, paused
 * until the method's stream consumes them, so nothing is read that nobody wants.
 */
import type { ClientDuplexStream, ClientReadableStream, Metadata, StatusObject } from "@grpc/grpc-js";
import { BodyUsedError } from "../core/errors.js";
import type { MeshResponse, ResponseHeaderMap } from "../core/types.js";
import type { Grpc } from "./load.js";
import { headersOfResponse } from "./metadata.js";
import { Code, GRPC_STATUS_NAMES, retryAfterOfPushback } from "./status.js";

const EMPTY = Buffer.alloc(0);

/** What both response kinds share: the outcome as the stack and the caller see it. */
abstract class GrpcOutcome {
  readonly status: number;
  /** The gRPC status code (0 for a stream that has answered and is still going). */
  readonly code: number;
  readonly details: string;
  /** The response's header metadata; null when none arrived (a trailers-only answer). */
  readonly headerMetadata: Metadata | null;
  /** The address of the server that answered (grpc-js's `getPeer()`). */
  readonly peer: string;
  #headers: ResponseHeaderMap | null = null;

  constructor(status: number, code: number, details: string, headerMetadata: Metadata | null, peer: string) {
    this.status = status;
    this.code = code;
    this.details = details;
    this.headerMetadata = headerMetadata;
    this.peer = peer;
  }

  /** The trailers, once the call has ended (null while a stream is still going). */
  abstract get trailers(): Metadata | null;

  get headers(): ResponseHeaderMap {
    if (this.#headers !== null) return this.#headers;
    const trailers = this.trailers;
    const pushback = trailers?.get("grpc-retry-pushback-ms")[0];
    this.#headers = headersOfResponse(this.headerMetadata, trailers, {
      "grpc-status": String(this.code),
      "grpc-message": this.details === "" ? undefined : encodeURIComponent(this.details),
      "retry-after": retryAfterOfPushback(pushback === undefined ? undefined : String(pushback)),
    });
    return this.#headers;
  }

  /** The status grpc-js reports for this outcome (`code`, `details`, the trailers). */
  statusObject(grpc: Grpc): StatusObject {
    return { code: this.code, details: this.details, metadata: this.trailers ?? new grpc.Metadata() };
  }

  /** `"14 UNAVAILABLE: details"`: grpc-js's error message for a status. */
  describe(): string {
    return `${this.code} ${GRPC_STATUS_NAMES[this.code] ?? "UNKNOWN"}: ${this.details}`;
  }
}

/** A unary or client-streaming call's outcome: its status and, on OK, its one message. */
export class GrpcResponse extends GrpcOutcome implements MeshResponse {
  readonly trailers: Metadata | null;
  #message: Buffer | null;
  #used = false;

  constructor(
    status: number,
    code: number,
    details: string,
    headerMetadata: Metadata | null,
    trailers: Metadata | null,
    message: Buffer | null,
    peer: string,
  ) {
    super(status, code, details, headerMetadata, peer);
    this.trailers = trailers;
    this.#message = message;
  }

  /** The response message's bytes, taken (null when there is none, or when already taken). */
  takeMessage(): Buffer | null {
    const message = this.#message;
    this.#message = null;
    this.#used = true;
    return message;
  }

  get bodyUsed(): boolean {
    return this.#used;
  }

  get body(): ReadableStream<Uint8Array> | null {
    if (this.#message === null) return null;
    const bytes = this.#take();
    return new ReadableStream<Uint8Array>({
      start(controller) {
        if (bytes.byteLength > 0) controller.enqueue(bytes);
        controller.close();
      },
    });
  }

  async text(): Promise<string> {
    return this.#take().toString("utf8");
  }

  async json<T = unknown>(): Promise<T> {
    return JSON.parse(await this.text()) as T;
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = this.#take();
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }

  takeBody(): Uint8Array | null {
    return this.#used ? null : this.#take();
  }

  async dump(): Promise<void> {
    this.#message = null;
    this.#used = true;
  }

  onBodyEnd(callback: () => void): void {
    // The message is in memory: nothing to wait for.
    callback();
  }

  #take(): Buffer {
    if (this.#used) throw new BodyUsedError();
    this.#used = true;
    const message = this.#message ?? EMPTY;
    this.#message = null;
    return message;
  }
}

/** How a method's stream takes the messages of a `GrpcStreamResponse`. */
export interface MessageSink {
  /** One response message; false asks for a pause until `resume()`. */
  message(bytes: Buffer): boolean;
  /** The call ended, every message delivered: its status (OK or not). */
  end(status: StatusObject): void;
}

type GrpcStream = ClientReadableStream<Buffer> | ClientDuplexStream<Buffer, Buffer>;

/**
 * A streaming call that has answered. grpc-js's stream is paused from the moment the transport
 * resolved it; `consume(sink)` hands the messages over (the first one first) and the status once
 * every message was delivered. `dump()` (a hedge that lost, a response that came too late)
 * cancels the call.
 */
export class GrpcStreamResponse extends GrpcOutcome implements MeshResponse {
  readonly #stream: GrpcStream;
  #first: Buffer | null;
  #status: StatusObject | null = null;
  #ended = false;
  #sink: MessageSink | null = null;
  #used = false;
  #onEnd: (() => void)[] | null = [];

  constructor(stream: GrpcStream, first: Buffer | null, headerMetadata: Metadata | null, peer: string) {
    super(200, Code.OK, "", headerMetadata, peer);
    this.#stream = stream;
    this.#first = first;
    stream.pause();
    stream.on("status", (status: StatusObject) => {
      this.#status = status;
      this.#finish();
    });
    stream.on("end", () => {
      this.#ended = true;
      this.#finish();
    });
  }

  get trailers(): Metadata | null {
    return this.#status?.metadata ?? null;
  }

  /** grpc-js's stream, for `getAuthContext()` and `cancel()`. */
  get stream(): GrpcStream {
    return this.#stream;
  }

  get bodyUsed(): boolean {
    return this.#used;
  }

  /** Hands the messages to `sink`, from the first; the status follows the last one. */
  consume(sink: MessageSink): void {
    if (this.#used) throw new BodyUsedError();
    this.#used = true;
    this.#sink = sink;
    const first = this.#first;
    this.#first = null;
    const more = first === null || sink.message(first);
    this.#stream.on("data", (bytes: Buffer) => {
      if (!sink.message(bytes)) this.#stream.pause();
    });
    if (more) this.#stream.resume();
  }

  /** After a sink asked for a pause. */
  resume(): void {
    this.#stream.resume();
  }

  #finish(): void {
    const status = this.#status;
    // A stream being consumed ends after its last message (grpc-js ends it at the status); one
    // nobody consumes has nothing to wait for.
    if (status === null || (this.#sink !== null && !this.#ended)) return;
    const callbacks = this.#onEnd;
    this.#onEnd = null;
    if (callbacks !== null) for (const callback of callbacks) callback();
    const sink = this.#sink;
    this.#sink = null;
    sink?.end(status);
  }

  /** Every message and the status (for callers of `client.request()`, who read bytes). */
  #collect(): Promise<{ messages: Buffer[]; status: StatusObject }> {
    const messages: Buffer[] = [];
    return new Promise((resolve) =>
      this.consume({
        message: (bytes) => (messages.push(bytes), true),
        end: (status) => resolve({ messages, status }),
      }),
    );
  }

  get body(): ReadableStream<Uint8Array> | null {
    const collected = this.#collect();
    // Each chunk is one message's bytes, without gRPC's framing.
    return new ReadableStream<Uint8Array>({
      async start(controller) {
        const { messages, status } = await collected;
        for (const bytes of messages) controller.enqueue(bytes);
        if ((status.code as number) === Code.OK) controller.close();
        else controller.error(new Error(`${status.code} ${GRPC_STATUS_NAMES[status.code]}: ${status.details}`));
      },
    });
  }

  async text(): Promise<string> {
    return Buffer.from(await this.arrayBuffer()).toString("utf8");
  }

  async json<T = unknown>(): Promise<T> {
    return JSON.parse(await this.text()) as T;
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = Buffer.concat((await this.#collect()).messages);
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  }

  async dump(): Promise<void> {
    if (this.#status !== null) return;
    this.#used = true;
    this.#stream.cancel();
  }

  onBodyEnd(callback: () => void): void {
    if (this.#onEnd === null) callback();
    else this.#onEnd.push(callback);
  }
}

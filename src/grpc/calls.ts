/**
 * The call objects a grpc-js caller gets back — `ClientUnaryCall`, `ClientReadableStream`,
 * `ClientWritableStream`, `ClientDuplexStream`, with the same events (`metadata`, `status`,
 * `data`, `error`), `cancel()`, `getPeer()` and `getAuthContext()` — made at once, before the
 * stack has picked an endpoint, and fed when the call answers. Through retries and hedges the
 * caller sees one call: only the attempt that answered reaches it.
 *
 * Each holds a `Cancellation` handed to the stack as the call's signal (it has the `AbortSignal`
 * members the client reads: `aborted`, `reason`, `addEventListener`, `removeEventListener`), so
 * `cancel()` costs no AbortController and no listener per call (core/cancel.ts).
 */
import { EventEmitter } from "node:events";
import { Duplex, Readable, Writable } from "node:stream";
import type { ClientUnaryCall, Metadata, StatusObject } from "@grpc/grpc-js";
import { Cancellation } from "../core/cancel.js";
import type { MeshResponse } from "../core/types.js";
import { serviceError, statusOfError } from "./errors.js";
import type { Grpc } from "./load.js";
import { MessageQueue } from "./queue.js";
import { GrpcResponse, GrpcStreamResponse } from "./response.js";
import { Code, codeOfHttpStatus } from "./status.js";

/** grpc-js's `AuthContext` (not exported by name). */
type AuthContext = ReturnType<ClientUnaryCall["getAuthContext"]>;

/** Why a call the caller cancelled was cancelled (grpc-js's status says "Cancelled on client"). */
const CANCELLED = Object.freeze(Object.assign(new Error("Cancelled on client"), { name: "CancelledError" }));

/** What the call objects share: the cancellation handed to the stack, the response once it came. */
export class CallControl {
  readonly cancellation = new Cancellation();
  response: GrpcResponse | GrpcStreamResponse | null = null;
  /** The caller's own signal, linked to `cancellation`. */
  signal: AbortSignal | null = null;

  cancel(): void {
    const response = this.response;
    if (response instanceof GrpcStreamResponse) response.stream.cancel();
    else this.cancellation.abort(CANCELLED);
  }

  getPeer(): string {
    return this.response?.peer ?? "";
  }

  getAuthContext(): AuthContext {
    const response = this.response;
    return response instanceof GrpcStreamResponse ? response.stream.getAuthContext() : null;
  }

  /** The status a rejection of the stack means for the caller. */
  statusOf(grpc: Grpc, error: unknown): StatusObject {
    const own = this.cancellation;
    const signal = this.signal;
    const cancelled = own.aborted ? own : signal?.aborted === true ? signal : null;
    return statusOfError(grpc, error, cancelled);
  }
}

/**
 * A unary (or client-streaming) outcome: the message's bytes, or the status it failed with. A
 * response that did not come from the transport (a fallback's, a route fault's) is read by its
 * `grpc-status` header, else its HTTP status mapped back.
 */
export async function outcomeOf(
  grpc: Grpc,
  res: MeshResponse,
): Promise<{ bytes: Buffer | null; status: StatusObject; headers: Metadata | null }> {
  if (res instanceof GrpcResponse) {
    return {
      bytes: res.code === Code.OK ? res.takeMessage() : null,
      status: res.statusObject(grpc),
      headers: res.headerMetadata,
    };
  }
  const header = res.headers["grpc-status"];
  const code = typeof header === "string" ? Number(header) : codeOfHttpStatus(res.status);
  const message = res.headers["grpc-message"];
  const details = typeof message === "string" ? decodeURIComponent(message) : "";
  const metadata = new grpc.Metadata();
  if (code !== Code.OK) {
    await res.dump();
    return { bytes: null, status: { code, details, metadata }, headers: null };
  }
  return { bytes: Buffer.from(await res.arrayBuffer()), status: { code, details, metadata }, headers: null };
}

/** A unary call in callback form: grpc-js's `ClientUnaryCall`. */
export class UnaryCall extends EventEmitter {
  readonly control = new CallControl();

  cancel(): void {
    this.control.cancel();
  }

  getPeer(): string {
    return this.control.getPeer();
  }

  getAuthContext(): AuthContext {
    return this.control.getAuthContext();
  }
}

/**
 * Feeds a streaming response into a Readable (a server stream's, a bidi call's readable side):
 * messages deserialized as they are read, then grpc-js's ending — the end of the data, `error`
 * for a status that is not OK, `status`.
 */
export class ResponseReader {
  #response: GrpcStreamResponse | null = null;
  /** Set when a message could not be deserialized: the status the caller gets instead of the call's. */
  #parseFailure: StatusObject | null = null;

  constructor(
    private readonly grpc: Grpc,
    private readonly target: Readable,
    private readonly control: CallControl,
    private readonly deserialize: (bytes: Buffer) => unknown,
  ) {}

  /** The caller read: let messages flow again. */
  read(): void {
    this.#response?.resume();
  }

  answer(res: MeshResponse): void {
    if (!(res instanceof GrpcStreamResponse)) {
      // The call ended before its first message (or a fallback answered): its status is all there is.
      void outcomeOf(this.grpc, res).then(
        ({ status, headers }) => {
          if (headers !== null) this.target.emit("metadata", headers);
          this.end(status);
        },
        (error: unknown) => this.fail(error),
      );
      return;
    }
    this.#response = res;
    this.control.response = res;
    if (res.headerMetadata !== null) this.target.emit("metadata", res.headerMetadata);
    res.consume({
      message: (bytes) => {
        if (this.#parseFailure !== null) return true;
        let message: unknown;
        try {
          message = this.deserialize(bytes);
        } catch (error) {
          this.#parseFailure = {
            code: Code.INTERNAL,
            details: `Failed to parse server response: ${String(error)}`,
            metadata: new this.grpc.Metadata(),
          };
          res.stream.cancel();
          return true;
        }
        return this.target.push(message);
      },
      end: (status) => this.end(this.#parseFailure ?? status),
    });
  }

  /** The stack failed the call: the caller gets its status. */
  fail(error: unknown): void {
    this.end(this.control.statusOf(this.grpc, error), error);
  }

  end(status: StatusObject, cause?: unknown): void {
    this.target.push(null);
    if ((status.code as number) !== Code.OK) this.target.emit("error", serviceError(status, cause));
    this.target.emit("status", status);
  }
}

/** A server-streaming call: grpc-js's `ClientReadableStream`. */
export class ReadableCall extends Readable {
  readonly control = new CallControl();
  readonly reader: ResponseReader;

  constructor(
    grpc: Grpc,
    readonly deserialize: (bytes: Buffer) => unknown,
  ) {
    super({ objectMode: true });
    this.reader = new ResponseReader(grpc, this, this.control, deserialize);
  }

  override _read(): void {
    this.reader.read();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Destroyed before the call ended (the caller stopped reading): nobody wants the rest.
    if (!this.readableEnded) this.control.cancel();
    callback(error);
  }

  cancel(): void {
    this.control.cancel();
  }

  getPeer(): string {
    return this.control.getPeer();
  }

  getAuthContext(): AuthContext {
    return this.control.getAuthContext();
  }
}

/** Serializes a write into the queue, or fails it as grpc-js does. */
function write(
  queue: MessageQueue,
  serialize: (value: unknown) => Buffer,
  value: unknown,
  callback: (error?: Error | null) => void,
): void {
  let bytes: Buffer;
  try {
    bytes = serialize(value);
  } catch (error) {
    callback(new Error(`Request message serialization failure: ${String(error)}`, { cause: error }));
    return;
  }
  queue.push(bytes, callback);
}

/** A client-streaming call: grpc-js's `ClientWritableStream`; its one reply goes to the callback. */
export class WritableCall extends Writable {
  readonly control = new CallControl();
  readonly queue = new MessageQueue();

  constructor(readonly serialize: (value: unknown) => Buffer) {
    super({ objectMode: true });
  }

  override _write(value: unknown, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    write(this.queue, this.serialize, value, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.queue.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.queue.fail(error ?? CANCELLED);
    callback(error);
  }

  cancel(): void {
    this.control.cancel();
  }

  getPeer(): string {
    return this.control.getPeer();
  }

  getAuthContext(): AuthContext {
    return this.control.getAuthContext();
  }
}

/** A bidi call: grpc-js's `ClientDuplexStream`. */
export class DuplexCall extends Duplex {
  readonly control = new CallControl();
  readonly queue = new MessageQueue();
  readonly reader: ResponseReader;

  constructor(
    grpc: Grpc,
    readonly serialize: (value: unknown) => Buffer,
    readonly deserialize: (bytes: Buffer) => unknown,
  ) {
    // The readable side ends at the status; the writable side when the caller ends it.
    super({ objectMode: true, allowHalfOpen: true });
    this.reader = new ResponseReader(grpc, this, this.control, deserialize);
  }

  override _read(): void {
    this.reader.read();
  }

  override _write(value: unknown, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    write(this.queue, this.serialize, value, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.queue.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.queue.fail(error ?? CANCELLED);
    if (!this.readableEnded) this.control.cancel();
    callback(error);
  }

  cancel(): void {
    this.control.cancel();
  }

  getPeer(): string {
    return this.control.getPeer();
  }

  getAuthContext(): AuthContext {
    return this.control.getAuthContext();
  }
}

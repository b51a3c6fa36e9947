/**
 * One attempt of the gRPC transport (transport.ts): it listens to its grpc-js call until the call
 * has answered, then turns the outcome into the response the stack passes up (status.ts maps the
 * status; a call grpc-js failed before any connection — or on a channel closed before it started,
 * or because weft's TLS refused the server — is rejected as never sent). The attempt's
 * cancellation cancels the call until its status arrives.
 */
import type { ChannelInterface as Channel, InterceptingListener, Metadata, StatusObject } from "@grpc/grpc-js";
import type { MeshRequest, MeshResponse } from "../core/types.js";
import { GrpcResponse, GrpcStreamResponse } from "./response.js";
import { Code, GRPC_STATUS_NAMES, httpStatusOf, unsentCode } from "./status.js";
import type { ChannelTls } from "./tls.js";

/**
 * An attempt that failed before any connection existed (status.ts's `unsentCode`): `code` is the
 * socket's error code, which the classifier reads as never sent. The caller gets `grpcStatus`.
 */
class GrpcUnsentError extends Error {
  readonly code: string;
  readonly grpcStatus: StatusObject;
  constructor(code: string, status: StatusObject, target: string) {
    super(`${status.code} ${GRPC_STATUS_NAMES[status.code]}: ${status.details} (${target}; never sent)`);
    this.name = "GrpcUnsentError";
    this.code = code;
    this.grpcStatus = status;
  }
}

/** The grpc-js call objects the transport listens to (unary-like ones answer through a callback). */
interface UnaryLikeCall {
  on(event: "metadata", listener: (metadata: Metadata) => void): unknown;
  on(event: "status", listener: (status: StatusObject) => void): unknown;
  cancel(): void;
}
interface StreamCall extends UnaryLikeCall {
  on(event: "metadata", listener: (metadata: Metadata) => void): unknown;
  on(event: "status", listener: (status: StatusObject) => void): unknown;
  on(event: "data", listener: (bytes: Buffer) => void): unknown;
  on(event: "error", listener: () => void): unknown;
  off(event: "data", listener: (bytes: Buffer) => void): unknown;
  pause(): unknown;
}

/** grpc-js's low-level call, as its `Channel.createCall` makes it. */
type RawCall = ReturnType<Channel["createCall"]>;

/** One attempt: listens to its grpc-js call until it has answered, and turns the outcome into a response. */
export class Attempt implements InterceptingListener {
  #headers: Metadata | null = null;
  #message: Buffer | undefined = undefined;
  #callbackCode = -1;
  #callbackDetails = "";
  #answered = false;
  #onAbort: (() => void) | null = null;
  #raw: RawCall | null = null;

  constructor(
    private readonly req: MeshRequest,
    private readonly target: string,
    private readonly resolve: (res: MeshResponse) => void,
    private readonly reject: (error: unknown) => void,
    /** weft's TLS on the channel (null: none), which knows the handshakes it refused. */
    private readonly tls: ChannelTls | null = null,
  ) {}

  /** grpc-js's callback for unary and client streaming: the message, or its verdict (it runs before 'status'). */
  readonly callback = (error: { code: number; details: string } | null, message?: Buffer): void => {
    if (error !== null) {
      this.#callbackCode = error.code;
      this.#callbackDetails = error.details;
    } else this.#message = message;
  };

  /**
   * A unary attempt straight on the channel's call (grpc-js's `Channel.createCall`, what its
   * `Client` builds on): the message is already bytes, and the client's surface — an event
   * emitter, the interceptor chain, a stack trace captured per call — would be paid for nothing.
   * This object is the call's listener. grpc-js's unary rules are kept: an OK with no message is
   * UNIMPLEMENTED "No message received", a second message cancels the call.
   */
  unary(channel: Channel, path: string, deadline: number | undefined, metadata: Metadata, message: Buffer): void {
    let call: RawCall;
    try {
      call = channel.createCall(path, deadline ?? Number.POSITIVE_INFINITY, null, null, null);
    } catch (error) {
      this.reject(closedChannel(this.target, error));
      return;
    }
    this.#raw = call;
    this.#listenCancel({ cancel: () => call.cancelWithStatus(Code.CANCELLED, "Cancelled on client") });
    call.start(metadata, this);
    call.sendMessageWithContext({}, message);
    call.halfClose();
    call.startRead();
  }

  onReceiveMetadata(metadata: Metadata): void {
    this.#headers = metadata;
  }

  onReceiveMessage(message: Buffer): void {
    if (this.#message !== undefined) {
      this.#raw?.cancelWithStatus(Code.UNIMPLEMENTED, "Too many responses received");
      return;
    }
    this.#message = message;
  }

  onReceiveStatus(status: StatusObject): void {
    this.#unlisten();
    if ((status.code as number) === Code.OK && this.#message === undefined)
      this.#settle(Code.UNIMPLEMENTED, "No message received", status, null);
    else this.#settle(status.code, status.details, status, this.#message ?? null);
  }

  /** A client-streaming call, through grpc-js's client surface (it writes the stream). */
  unaryLike(call: UnaryLikeCall): void {
    this.#listenCancel(call);
    call.on("metadata", (metadata) => (this.#headers = metadata));
    call.on("status", (status) => {
      this.#unlisten();
      // grpc-js turns an OK without a message into UNIMPLEMENTED in its callback: take its verdict.
      const code = this.#callbackCode >= 0 ? this.#callbackCode : status.code;
      const details = this.#callbackCode >= 0 ? this.#callbackDetails : status.details;
      this.#settle(code, details, status, this.#message ?? null);
    });
  }

  stream(call: StreamCall, answerAtMetadata: boolean): void {
    this.#listenCancel(call);
    const answer = (first: Buffer | null): void => {
      this.#answered = true;
      call.off("data", onData);
      this.resolve(new GrpcStreamResponse(call as never, first, this.#headers, this.target));
    };
    const onData = (bytes: Buffer): void => {
      call.pause();
      if (!this.#answered) answer(bytes);
    };
    call.on("data", onData);
    call.on("metadata", (metadata) => {
      this.#headers = metadata;
      if (answerAtMetadata && !this.#answered) answer(null);
    });
    // The status says what went wrong; grpc-js emits its 'error' too, which must have a listener.
    call.on("error", () => {});
    call.on("status", (status) => {
      this.#unlisten();
      if (this.#answered) return;
      this.#answered = true;
      this.#settle(status.code, status.details, status, null);
    });
  }

  #settle(code: number, details: string, status: StatusObject, message: Buffer | null): void {
    const cancel = this.req.cancel;
    // Cancelled from above (the caller, a deadline, a hedge that lost): that is the outcome.
    if (cancel !== null && cancel.aborted) return this.reject(cancel.reason);
    // Only a status grpc-js made itself can say the call never left: one the server sent came
    // with response headers, or (trailers-only) with a content-type — a server relaying its own
    // upstream's "No connection established" must not pass for it.
    if (code !== Code.OK && this.#headers === null && status.metadata.get("content-type").length === 0) {
      if (code === Code.UNAVAILABLE) {
        // The channel's TLS refused the server (its SPIFFE ID, its host name): weft's error, never sent.
        const refused = this.tls?.refusal(details);
        if (refused !== undefined) return this.reject(refused);
        // Queued for a connection when the channel was closed (released, or retired by a rotation).
        if (details === CLOSED_BEFORE_START) return this.reject(closedChannel(this.target, new Error(details)));
      }
      const unsent = unsentCode(code, details);
      if (unsent !== null) return this.reject(new GrpcUnsentError(unsent, { ...status, code, details }, this.target));
    }
    this.resolve(
      new GrpcResponse(
        httpStatusOf(code, details),
        code,
        details,
        this.#headers,
        status.metadata,
        message,
        this.target,
      ),
    );
  }

  /** Cancels the grpc-js call when the attempt is cancelled, until its status arrives. */
  #listenCancel(call: { cancel(): void }): void {
    const cancel = this.req.cancel;
    if (cancel === null) return;
    this.#onAbort = () => call.cancel();
    cancel.addEventListener("abort", this.#onAbort);
  }

  #unlisten(): void {
    if (this.#onAbort !== null) this.req.cancel?.removeEventListener("abort", this.#onAbort);
    this.#onAbort = null;
  }
}

/**
 * What grpc-js says to the calls still waiting for a connection (its pick queue) when their channel
 * closes: they never started.
 */
const CLOSED_BEFORE_START = "Channel closed before call started";

/**
 * grpc-js refused to start a call on a channel that was closed (its endpoint released, or retired
 * by a TLS rotation) between the pick and now: nothing was sent. The code is the one the undici
 * transport uses for a closed pool, which the classifier lists as never sent.
 */
export function closedChannel(target: string, error: unknown): Error {
  return Object.assign(new Error(`the grpc channel to ${target} is closed`, { cause: error }), {
    code: "UND_ERR_CLOSED",
  });
}

/**
 * A service's methods as the caller calls them — grpc-js's signatures, each call going through
 * the weft client's stack: the request message serialized once into a replayable body (unary,
 * server streaming) or a one-shot stream of messages (client streaming, bidi), its metadata as
 * headers, `idempotent` from the method config, the deadline as the call's total timeout.
 *
 * - unary: `(request, [metadata], [options], callback)` → `ClientUnaryCall`; without a callback,
 *   a Promise of the response message (weft's addition);
 * - server streaming: `(request, [metadata], [options])` → `ClientReadableStream`;
 * - client streaming: `([metadata], [options], callback)` → `ClientWritableStream`;
 * - bidi: `([metadata], [options])` → `ClientDuplexStream`.
 */
import type { EventEmitter } from "node:events";
import type { Metadata, StatusObject } from "@grpc/grpc-js";
import { linkSignal } from "../core/cancel.js";
import { systemClock } from "../core/clock.js";
import type { Client, MeshRequestInit, TimeoutOptions } from "../client/index.js";
import type { MeshBody, MeshResponse } from "../core/types.js";
import { serviceError, statusOfError } from "./errors.js";
import type { Grpc } from "./load.js";
import { headersOfMetadata } from "./metadata.js";
import { CallControl, DuplexCall, ReadableCall, UnaryCall, WritableCall, outcomeOf } from "./calls.js";
import { GrpcResponse } from "./response.js";
import { Code } from "./status.js";
import type { GrpcCallOptions } from "./options.js";

/** What every call of one method shares. */
export interface MethodContext {
  readonly grpc: Grpc;
  readonly client: Client;
  readonly path: string;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  readonly serialize: (value: unknown) => Buffer;
  readonly deserialize: (bytes: Buffer) => unknown;
  /** From the method config, else the proto's `idempotency_level`; a call's own `idempotent` wins. */
  readonly idempotent: boolean;
  /** The method config's `timeoutMs` as the call's total timeout; a call's `deadline` wins. */
  readonly timeout: TimeoutOptions | undefined;
}

type Callback = (error: Error | null, response?: unknown) => void;

/** Why writes queued for a call that failed before it was sent are dropped. */
const ENDED = new Error("the call ended before this message was sent");

const CALL_OPTION_KEYS = new Set(["deadline", "signal", "idempotent"]);

const NO_OPTIONS: GrpcCallOptions = Object.freeze({});

/** A call's leading arguments after the request, as grpc-js takes them: `[metadata], [options], [callback]`. */
interface CallArgs {
  metadata: Metadata | undefined;
  options: GrpcCallOptions;
  callback: Callback | undefined;
}

function parseArgs(args: readonly unknown[]): CallArgs {
  const parsed: CallArgs = { metadata: undefined, options: NO_OPTIONS, callback: undefined };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === undefined || arg === null) continue;
    if (typeof arg === "function" && i === args.length - 1) parsed.callback = arg as Callback;
    else if (typeof (arg as Metadata).toHttp2Headers === "function") parsed.metadata = arg as Metadata;
    else if (typeof arg === "object") parsed.options = checkCallOptions(arg);
    else throw new TypeError(`grpc: expected metadata, call options or a callback, got ${typeof arg}`);
  }
  return parsed;
}

function checkCallOptions(options: object): GrpcCallOptions {
  for (const key in options) {
    if (!CALL_OPTION_KEYS.has(key) && (options as Record<string, unknown>)[key] !== undefined)
      throw new TypeError(`grpc: unsupported call option "${key}" (weft takes deadline, signal and idempotent)`);
  }
  return options;
}

/** The call's total timeout from a grpc-js deadline (a Date or ms since the epoch). */
function timeoutOf(
  ctx: MethodContext,
  grpcDeadline: Date | number | undefined,
  wallNow: number,
): TimeoutOptions | undefined {
  if (grpcDeadline === undefined) return ctx.timeout;
  const at = grpcDeadline instanceof Date ? grpcDeadline.getTime() : grpcDeadline;
  if (at === Number.POSITIVE_INFINITY) return ctx.timeout;
  // A deadline already past: as good as none left (grpc-js fails such a call at once too).
  return { ...ctx.timeout, totalMs: Math.max(1, at - wallNow) };
}

function requestInit(
  ctx: MethodContext,
  body: MeshBody | AsyncIterable<Uint8Array>,
  metadata: Metadata | undefined,
  options: GrpcCallOptions,
  control: CallControl | null,
): MeshRequestInit {
  let signal: AbortSignal | null | undefined = options.signal;
  if (control !== null) {
    if (signal != null) {
      linkSignal(signal, control.cancellation);
      control.signal = signal;
    }
    // A Cancellation has the AbortSignal members the client reads (core/cancel.ts).
    signal = control.cancellation as unknown as AbortSignal;
  }
  return {
    method: "POST",
    path: ctx.path,
    headers: headersOfMetadata(metadata),
    body: body as MeshRequestInit["body"],
    signal,
    idempotent: options.idempotent ?? ctx.idempotent,
    timeout: options.deadline === undefined ? ctx.timeout : timeoutOf(ctx, options.deadline, systemClock.wallNow()),
  };
}

/** The request message's bytes, or the INTERNAL status grpc-js reports when it cannot be serialized. */
function serialized(ctx: MethodContext, request: unknown): Buffer | StatusObject {
  try {
    return ctx.serialize(request);
  } catch (error) {
    return {
      code: Code.INTERNAL,
      details: `Request message serialization failure: ${String(error)}`,
      metadata: new ctx.grpc.Metadata(),
    };
  }
}

/** A unary-like call's outcome, as its callback and events take it. */
type Reply =
  | { readonly ok: true; readonly message: unknown; readonly status: StatusObject; readonly headers: Metadata | null }
  | { readonly ok: false; readonly status: StatusObject; readonly headers: Metadata | null; readonly cause?: unknown };

/** The reply message deserialized, or the status the call failed with. */
function replyOf(ctx: MethodContext, bytes: Buffer | null, status: StatusObject, headers: Metadata | null): Reply {
  if ((status.code as number) !== Code.OK) return { ok: false, status, headers };
  try {
    return { ok: true, message: ctx.deserialize(bytes ?? EMPTY), status, headers };
  } catch (error) {
    const details = `Failed to parse server response: ${String(error)}`;
    return { ok: false, status: { code: Code.INTERNAL, details, metadata: status.metadata }, headers, cause: error };
  }
}

/** What the stack answered, as a reply: at once for the transport's response, after reading it for any other. */
function reply(ctx: MethodContext, res: MeshResponse): Reply | Promise<Reply> {
  if (res instanceof GrpcResponse) {
    const ok = res.code === Code.OK;
    return replyOf(ctx, ok ? res.takeMessage() : null, res.statusObject(ctx.grpc), res.headerMetadata);
  }
  return outcomeOf(ctx.grpc, res).then(({ bytes, status, headers }) => replyOf(ctx, bytes, status, headers));
}

/** Runs a unary-like call's callback and events in grpc-js's order: metadata, callback, status. */
function finish(emitter: EventEmitter, callback: Callback, result: Reply): void {
  if (result.headers !== null) emitter.emit("metadata", result.headers);
  if (result.ok) callback(null, result.message);
  else callback(serviceError(result.status, result.cause));
  emitter.emit("status", result.status);
}

/** Feeds what the stack answered into a unary-like call. */
function answer(
  ctx: MethodContext,
  emitter: EventEmitter,
  control: CallControl,
  callback: Callback,
  pending: Promise<MeshResponse>,
): void {
  pending
    .then(
      (res) => {
        if (res instanceof GrpcResponse) control.response = res;
        return reply(ctx, res);
      },
      (error: unknown): Reply => ({
        ok: false,
        status: control.statusOf(ctx.grpc, error),
        headers: null,
        cause: error,
      }),
    )
    .then((result) => finish(emitter, callback, result))
    .catch((error: unknown) =>
      process.nextTick(() => {
        // The caller's callback threw: as in grpc-js, that is the caller's uncaught exception.
        throw error;
      }),
    );
}

/** A failure before the call was made (its message could not be serialized). */
function failEarly(emitter: EventEmitter, callback: Callback, status: StatusObject): void {
  process.nextTick(() => finish(emitter, callback, { ok: false, status, headers: null }));
}

/** A unary method: a Promise without a callback, grpc-js's `ClientUnaryCall` with one. */
export function unaryMethod(ctx: MethodContext): (...args: unknown[]) => unknown {
  const settle = (res: MeshResponse): unknown => {
    const result = reply(ctx, res);
    if (!(result instanceof Promise)) return messageOf(result);
    return result.then(messageOf);
  };
  return (request: unknown, ...rest: unknown[]) => {
    // The common call — a request, no metadata, options or callback — parses nothing.
    const args = rest.length === 0 ? NO_ARGS : parseArgs(rest);
    const bytes = serialized(ctx, request);
    const { metadata, options, callback } = args;
    if (callback === undefined) {
      if (!Buffer.isBuffer(bytes)) return Promise.reject(serviceError(bytes));
      const signal = options.signal;
      return ctx.client.request(requestInit(ctx, bytes, metadata, options, null)).then(settle, (error: unknown) => {
        throw serviceError(statusOfError(ctx.grpc, error, signal?.aborted === true ? signal : null), error);
      });
    }
    const call = new UnaryCall();
    if (Buffer.isBuffer(bytes))
      answer(
        ctx,
        call,
        call.control,
        callback,
        ctx.client.request(requestInit(ctx, bytes, metadata, options, call.control)),
      );
    else failEarly(call, callback, bytes);
    return call;
  };
}

const NO_ARGS: CallArgs = Object.freeze({ metadata: undefined, options: NO_OPTIONS, callback: undefined });
const EMPTY = Buffer.alloc(0);

/** The message of a reply, or its ServiceError thrown. */
function messageOf(result: Reply): unknown {
  if (result.ok) return result.message;
  throw serviceError(result.status, result.cause);
}

/** A server-streaming method: grpc-js's `ClientReadableStream`. */
export function serverStreamMethod(ctx: MethodContext): (...args: unknown[]) => unknown {
  return (request: unknown, ...rest: unknown[]) => {
    const { metadata, options } = parseArgs(rest);
    const call = new ReadableCall(ctx.grpc, ctx.deserialize);
    const bytes = serialized(ctx, request);
    if (!Buffer.isBuffer(bytes)) {
      process.nextTick(() => call.reader.end(bytes));
      return call;
    }
    ctx.client.request(requestInit(ctx, bytes, metadata, options, call.control)).then(
      (res) => call.reader.answer(res),
      (error: unknown) => call.reader.fail(error),
    );
    return call;
  };
}

/** A client-streaming method: grpc-js's `ClientWritableStream`, its reply to the callback. */
export function clientStreamMethod(ctx: MethodContext): (...args: unknown[]) => unknown {
  return (...args: unknown[]) => {
    const { metadata, options, callback } = parseArgs(args);
    if (callback === undefined) throw new TypeError("grpc: a client-streaming call takes a callback (its reply)");
    const call = new WritableCall(ctx.serialize);
    const pending = ctx.client.request(requestInit(ctx, call.queue, metadata, options, call.control));
    // Writes the stack will never take (it failed before the transport) must not hold the caller's stream.
    pending.catch(() => call.queue.fail(ENDED));
    answer(ctx, call, call.control, callback, pending);
    return call;
  };
}

/** A bidi method: grpc-js's `ClientDuplexStream`. */
export function bidiStreamMethod(ctx: MethodContext): (...args: unknown[]) => unknown {
  return (...args: unknown[]) => {
    const { metadata, options } = parseArgs(args);
    const call = new DuplexCall(ctx.grpc, ctx.serialize, ctx.deserialize);
    ctx.client.request(requestInit(ctx, call.queue, metadata, options, call.control)).then(
      (res) => call.reader.answer(res),
      (error: unknown) => {
        call.queue.fail(ENDED);
        call.reader.fail(error);
      },
    );
    return call;
  };
}

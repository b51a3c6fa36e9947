/**
 * The gRPC transport: the terminal of a weft client's stack that sends an attempt on a grpc-js
 * channel — one `grpc.Client` per endpoint origin, made on the first attempt there and closed
 * when discovery drops the endpoint (`release`) or the client closes. Everything above it (discovery,
 * balancing, breakers, retries with the budget, hedging, deadlines, tracing, metrics) is the
 * stack every weft client has, with the one classifier.
 *
 * An attempt is bytes in, bytes out: the request message was serialized once, at the top
 * (grpcClient), into the request's replayable body, and the response message is handed up
 * undeserialized. A unary attempt goes straight on the channel's call (`Channel.createCall`, what
 * grpc-js's own `Client` builds on); streaming ones through the `Client`'s stream methods with
 * identity (de)serializers. The method's shape (unary, server, client or bidi streaming) comes
 * from the service definition, by path.
 *
 * When an attempt has answered (status.ts maps the outcome):
 * - unary and client streaming: at the status, as a `GrpcResponse`;
 * - server streaming: at the first message (or the status, if none came first), so a failure
 *   before it may be resent like a unary call's and one after it never is;
 * - bidi: at the response's header metadata, its first message or its status.
 *
 * With weft's `tls` (tls.ts), an `https://` channel is made with the material current then, and a
 * rotation (the source's change) retires every such channel: the next call makes a new one with the
 * new material, while grpc-js lets the calls in flight on the old one finish before it closes.
 *
 * grpc-js gets the attempt's deadline (the `x-weft-timeout-ms` the attempt layer computed — the
 * sooner of the per-try timeout and the call's deadline, itself bounded by an inherited one —
 * else the call's deadline) as its `deadline`, so the server receives `grpc-timeout`. Its own
 * retries stay at their default: none but the transparent ones, for calls no server application
 * saw; a DNS TXT service config cannot turn on retries or hedging under weft's.
 */
import type { ChannelCredentials, ChannelOptions, Client, ClientWritableStream } from "@grpc/grpc-js";
import type { TlsClient } from "../client/index.js";
import { systemClock, type Clock } from "../core/clock.js";
import type { Endpoint } from "../core/endpoint.js";
import type { Transport, TransportFactory } from "../core/transport.js";
import type { MeshBody, MeshRequest, MeshResponse } from "../core/types.js";
import type { Grpc } from "./load.js";
import { Attempt, closedChannel } from "./attempt.js";
import { metadataOfHeaders } from "./metadata.js";
import { ChannelTls } from "./tls.js";

/** A method's shape, from its definition. */
export interface MethodShape {
  readonly requestStream: boolean;
  readonly responseStream: boolean;
}

/** What the client fills in once it exists (the transport is made before it). */
export interface TransportLink {
  /** The attempt layer's deadline header (`timeout.header`), read for the attempt's deadline and not sent as metadata. */
  deadlineHeader: string | false;
  /** The client's clock, on which `req.deadline` is read. */
  clock: Clock;
}

export interface GrpcTransportOptions {
  readonly grpc: Grpc;
  /** Method shapes by path (`/package.Service/Method`); a path not listed is sent as unary. */
  readonly methods: ReadonlyMap<string, MethodShape>;
  /** For `https://` endpoints; default `grpc.credentials.createSsl()`. `http://` endpoints are plaintext (h2c). */
  readonly credentials: ChannelCredentials | undefined;
  /** weft's TLS for `https://` endpoints instead of `credentials` (never both): identity check, counters, rotation. */
  readonly tls: TlsClient | null;
  readonly channelOptions: ChannelOptions;
  readonly link: TransportLink;
}

const UNARY: MethodShape = Object.freeze({ requestStream: false, responseStream: false });
const NO_OPTIONS = Object.freeze({});

const identity = (bytes: Buffer): Buffer => bytes;

/** Channels that weft adds to the caller's options: no service config from DNS TXT records. */
const CHANNEL_DEFAULTS: ChannelOptions = Object.freeze({ "grpc.service_config_disable_resolution": 1 });

/**
 * The transport of a `grpcClient` (one per client: it knows that service's methods).
 * @internal grpcClient makes it.
 */
export function grpcTransport(options: GrpcTransportOptions): TransportFactory {
  return { name: "grpc", create: () => new GrpcTransport(options) };
}

/** An endpoint's channel: a grpc-js client, the target it dials, and weft's TLS on it (null: none). */
interface Channel {
  readonly client: Client;
  readonly target: string;
  readonly tls: ChannelTls | null;
}

class GrpcTransport implements Transport {
  readonly name = "grpc";
  readonly #options: GrpcTransportOptions;
  readonly #channelOptions: ChannelOptions;
  /** A channel per endpoint origin. */
  readonly #channels = new Map<string, Channel>();
  readonly #unsubscribe: (() => void) | null;
  #closed = false;

  constructor(options: GrpcTransportOptions) {
    this.#options = options;
    this.#channelOptions = { ...CHANNEL_DEFAULTS, ...options.channelOptions };
    // New material: new calls go to new channels (made with it); the old ones finish their calls.
    this.#unsubscribe = options.tls?.source.onChange(() => this.#retireTls()) ?? null;
  }

  tlsSnapshot(): unknown {
    return this.#options.tls?.snapshot();
  }

  send(req: MeshRequest): Promise<MeshResponse> {
    const endpoint = req.endpoint;
    if (endpoint === null)
      return Promise.reject(new Error("grpc transport: request has no endpoint (is the balance layer missing?)"));
    const channel = this.#channel(endpoint);
    if (channel === null)
      return Promise.reject(Object.assign(new Error("grpc transport is closed"), { code: "UND_ERR_CLOSED" }));
    const cancel = req.cancel;
    if (cancel !== null && cancel.aborted) return Promise.reject(cancel.reason);
    const { grpc, link } = this.#options;
    const shape = this.#options.methods.get(req.path) ?? UNARY;
    const metadata = metadataOfHeaders(grpc, req.headers, link.deadlineHeader);
    const deadline = this.#deadline(req, shape.responseStream);
    const { client, target, tls } = channel;
    const path = req.path;
    return new Promise<MeshResponse>((resolve, reject) => {
      const attempt = new Attempt(req, target, resolve, reject, tls);
      if (!shape.requestStream && !shape.responseStream) {
        attempt.unary(client.getChannel(), path, deadline, metadata, bytesOf(req.body));
        return;
      }
      const options = deadline === undefined ? NO_OPTIONS : { deadline };
      try {
        if (!shape.requestStream) {
          const message = bytesOf(req.body);
          attempt.stream(client.makeServerStreamRequest(path, identity, identity, message, metadata, options), false);
        } else if (!shape.responseStream) {
          const call = client.makeClientStreamRequest(path, identity, identity, metadata, options, attempt.callback);
          attempt.unaryLike(call);
          void pump(req.body, call);
        } else {
          const call = client.makeBidiStreamRequest(path, identity, identity, metadata, options);
          attempt.stream(call, true);
          void pump(req.body, call);
        }
      } catch (error) {
        reject(closedChannel(target, error));
      }
    });
  }

  /**
   * The attempt's deadline as grpc-js takes it (ms since the epoch), or undefined for none. A
   * streaming response is bounded by the call's deadline only: the per-try timeout ends at its
   * first message, while gRPC's deadline bounds the whole stream.
   */
  #deadline(req: MeshRequest, streaming: boolean): number | undefined {
    const { deadlineHeader, clock } = this.#options.link;
    let ms = Number.POSITIVE_INFINITY;
    if (deadlineHeader !== false && !streaming) {
      const value = req.headers[deadlineHeader];
      if (typeof value === "string") ms = Number(value);
    }
    if (!(ms < Number.POSITIVE_INFINITY) && req.deadline !== Number.POSITIVE_INFINITY) ms = req.deadline - clock.now();
    return ms < Number.POSITIVE_INFINITY ? systemClock.wallNow() + Math.max(0, ms) : undefined;
  }

  #channel(endpoint: Endpoint): Channel | null {
    let channel = this.#channels.get(endpoint.origin);
    if (channel === undefined) {
      if (this.#closed) return null;
      const { grpc, credentials } = this.#options;
      const host = endpoint.hostname.includes(":") ? `[${endpoint.hostname}]` : endpoint.hostname;
      const target = `${host}:${endpoint.port}`;
      const secure = endpoint.origin.startsWith("https:");
      const tls =
        secure && this.#options.tls !== null
          ? new ChannelTls(grpc, this.#options.tls, endpoint.origin, endpoint.hostname)
          : null;
      const channelCredentials =
        tls?.credentials ??
        (secure ? (credentials ?? grpc.credentials.createSsl()) : grpc.credentials.createInsecure());
      const channelOptions = tls === null ? this.#channelOptions : { ...this.#channelOptions, ...tls.channelOptions };
      channel = { client: new grpc.Client(target, channelCredentials, channelOptions), target, tls };
      this.#channels.set(endpoint.origin, channel);
    }
    return channel;
  }

  /** Retires the channels made with weft's TLS: the next call makes a new one; grpc-js lets the old one's calls finish. */
  #retireTls(): void {
    for (const [origin, channel] of this.#channels) {
      if (channel.tls === null) continue;
      this.#channels.delete(origin);
      channel.client.close();
    }
  }

  async release(origin: string): Promise<void> {
    const channel = this.#channels.get(origin);
    if (channel === undefined) return;
    this.#channels.delete(origin);
    // grpc-js lets the calls in flight on the channel finish.
    channel.client.close();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#unsubscribe?.();
    for (const channel of this.#channels.values()) channel.client.close();
    this.#channels.clear();
    this.#options.tls?.close();
  }
}

/** A replayable body as the bytes grpc-js writes (the serialized request message). */
function bytesOf(body: MeshBody | null): Buffer {
  if (body === null) return Buffer.alloc(0);
  if (typeof body === "string") return Buffer.from(body);
  if (body instanceof Uint8Array)
    return Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  throw new TypeError("grpc transport: a unary or server-streaming request takes one message, not a stream");
}

/** Writes a streaming request's messages (each chunk one serialized message) into the call, then half-closes it. */
async function pump(body: MeshBody | null, call: ClientWritableStream<Buffer>): Promise<void> {
  let ended = false;
  call.once("status", () => (ended = true));
  try {
    if (body !== null && typeof body === "object" && !(body instanceof Uint8Array)) {
      for await (const chunk of body.stream as AsyncIterable<Uint8Array>) {
        if (ended) return;
        if (!call.write(bytesOf(chunk))) await drained(call);
      }
    } else if (body !== null) call.write(bytesOf(body));
    if (!ended) call.end();
  } catch {
    // The caller's request stream failed or was destroyed: the call cannot be completed.
    if (!ended) call.cancel();
  }
}

/** Resolves when the call can take more, or has ended. */
function drained(call: ClientWritableStream<Buffer>): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      call.off("drain", done);
      call.off("status", done);
      resolve();
    };
    call.on("drain", done);
    call.on("status", done);
  });
}

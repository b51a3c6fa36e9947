/**
 * `grpcClient()`'s options: a weft client's (discovery, balancer, timeout, retry, hedge, breaker,
 * concurrency… — the same option rules, validated by the client), weft's `tls` as the client
 * takes it, plus `grpc`: credentials, channel options and the per-method config that says which
 * methods are idempotent and which override the client's timeout, retry or hedging.
 */
import type {
  ChannelCredentials,
  ChannelOptions,
  ClientDuplexStream,
  ClientReadableStream,
  ClientUnaryCall,
  ClientWritableStream,
  Metadata,
  ServiceError,
} from "@grpc/grpc-js";
import type { ClientOptions, Mesh, RouteOptions, TlsOptions } from "../client/index.js";
import { checkKeys, checkMs, fail, isPlainObject } from "../core/validate.js";

/** One method's definition, as `@grpc/proto-loader` or grpc-tools generate it (`Service.service[name]`). */
export interface GrpcMethodDefinition {
  readonly path: string;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  // Serializers are user code of any message type, as in grpc-js's own definitions.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly requestSerialize: (value: any) => Buffer;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly responseDeserialize: (bytes: Buffer) => any;
  /** The camelCase name grpc-js also gives the method. */
  readonly originalName?: string;
  /** The method's proto options (proto-loader): `idempotency_level` IDEMPOTENT or NO_SIDE_EFFECTS makes it idempotent. */
  readonly options?: { readonly idempotency_level?: string };
}

/** A service's methods by name (`ServiceClientConstructor.service`). */
export type GrpcServiceDefinition = Readonly<Record<string, GrpcMethodDefinition>>;

/** What `grpcClient()` takes: a generated client class (with its `service`), or the definition itself. */
export type GrpcService = { readonly service: GrpcServiceDefinition } | GrpcServiceDefinition;

/** One method's config. */
export interface GrpcMethodConfig {
  /**
   * Safe to send again after it reached a server (retried on UNAVAILABLE, hedged). Default: the
   * proto's `idempotency_level` (IDEMPOTENT or NO_SIDE_EFFECTS), else false. A call's own
   * `idempotent` wins. Streaming requests are never resent, idempotent or not.
   */
  readonly idempotent?: boolean;
  /** The method's total deadline, ms, instead of the client's `timeout.totalMs`; a call's `deadline` wins. */
  readonly timeoutMs?: number;
  /** The method's retry policy, over the client's (the budget stays the client's). `false`: one attempt. */
  readonly retry?: RouteOptions["retry"];
  /** The method's hedging, over the client's; `false`: none. Only idempotent unary and server-streaming calls are hedged. */
  readonly hedge?: RouteOptions["hedge"];
}

/** `grpcClient`'s own options: grpc-js's credentials and channel options, and the per-method config. */
export interface GrpcOptions {
  /**
   * grpc-js credentials for `https://` endpoints, instead of weft's `tls` (not with it). Default
   * `grpc.credentials.createSsl()`; `http://` endpoints are plaintext (h2c).
   */
  readonly credentials?: ChannelCredentials;
  /** grpc-js channel options for every endpoint's channel (keepalive, message sizes…). */
  readonly channelOptions?: ChannelOptions;
  /** Per-method config, by the method's name in the proto (`"SayHello"`) or grpc-js's camelCase one (`"sayHello"`). */
  readonly methods?: Readonly<Record<string, GrpcMethodConfig>>;
}

/** A weft client's options (its transport is gRPC's) and `grpc`'s. */
export interface GrpcClientOptions extends Omit<ClientOptions, "transport" | "tls"> {
  /** The mesh to make the client in (its defaults, resolvers, admin page, one `close()`). Default: a mesh of its own. */
  readonly mesh?: Mesh;
  /**
   * TLS to the `https://` endpoints, as `createClient({ tls })` takes it: the trust bundle, a
   * client certificate (mTLS), the SPIFFE ID the servers must present (`identity`), rotation
   * (`source: tlsFiles(…)`: new calls go to channels made with the new material, calls in flight
   * finish on the old ones). `http://` endpoints stay plaintext. Not with `grpc.credentials`.
   * Default: none (`grpc.credentials`, else Node's root CAs and the host name).
   * @example tls: { source: tlsFiles({ cert, key, ca }), identity: "spiffe://example.org/ns/shop/sa/catalog" }
   */
  readonly tls?: TlsOptions;
  /** Credentials, channel options, per-method config. */
  readonly grpc?: GrpcOptions;
}

/** A call's options (grpc-js's `CallOptions`, the part weft takes). */
export interface GrpcCallOptions {
  /** When the call must be over (a Date or ms since the epoch), under the client's and any inherited deadline. */
  readonly deadline?: Date | number;
  /** Cancels the call (as `call.cancel()` does). */
  readonly signal?: AbortSignal | null;
  /** Overrides the method's idempotency for this call. */
  readonly idempotent?: boolean;
}

/** A unary or client-streaming call's callback, as grpc-js calls it. */
export type GrpcCallback<Res> = (error: ServiceError | null, response?: Res) => void;

/** A unary method: a Promise of the reply without a callback; grpc-js's callback form and `ClientUnaryCall` with one. */
export interface GrpcUnaryMethod<Req = unknown, Res = unknown> {
  (request: Req, metadata?: Metadata, options?: GrpcCallOptions): Promise<Res>;
  (request: Req, options?: GrpcCallOptions): Promise<Res>;
  (request: Req, callback: GrpcCallback<Res>): ClientUnaryCall;
  (request: Req, metadata: Metadata, callback: GrpcCallback<Res>): ClientUnaryCall;
  (request: Req, options: GrpcCallOptions, callback: GrpcCallback<Res>): ClientUnaryCall;
  (request: Req, metadata: Metadata, options: GrpcCallOptions, callback: GrpcCallback<Res>): ClientUnaryCall;
}

/** A server-streaming method: grpc-js's `ClientReadableStream` of the replies. */
export interface GrpcServerStreamMethod<Req = unknown, Res = unknown> {
  (request: Req, metadata?: Metadata, options?: GrpcCallOptions): ClientReadableStream<Res>;
  (request: Req, options?: GrpcCallOptions): ClientReadableStream<Res>;
}

/** A client-streaming method: grpc-js's `ClientWritableStream`; the one reply goes to the callback. */
export interface GrpcClientStreamMethod<Req = unknown, Res = unknown> {
  (callback: GrpcCallback<Res>): ClientWritableStream<Req>;
  (metadata: Metadata, callback: GrpcCallback<Res>): ClientWritableStream<Req>;
  (options: GrpcCallOptions, callback: GrpcCallback<Res>): ClientWritableStream<Req>;
  (metadata: Metadata, options: GrpcCallOptions, callback: GrpcCallback<Res>): ClientWritableStream<Req>;
}

/** A bidi method: grpc-js's `ClientDuplexStream`. */
export interface GrpcBidiStreamMethod<Req = unknown, Res = unknown> {
  (metadata?: Metadata, options?: GrpcCallOptions): ClientDuplexStream<Req, Res>;
  (options?: GrpcCallOptions): ClientDuplexStream<Req, Res>;
}

const GRPC_KEYS = ["credentials", "channelOptions", "methods"];
const METHOD_KEYS = ["idempotent", "timeoutMs", "retry", "hedge"];

/** Checks `grpc` (the rest of the options are the client's to check); returns it with defaults. */
export function checkGrpcOptions(value: unknown): GrpcOptions {
  if (value === undefined) return {};
  if (!isPlainObject(value)) fail("grpc", value, "{ credentials?, channelOptions?, methods? }");
  checkKeys(value, GRPC_KEYS, "grpc");
  const { credentials, channelOptions, methods } = value;
  if (credentials !== undefined && (typeof credentials !== "object" || credentials === null))
    fail("grpc.credentials", credentials, "grpc-js ChannelCredentials, e.g. grpc.credentials.createSsl(ca)");
  if (channelOptions !== undefined && !isPlainObject(channelOptions))
    fail("grpc.channelOptions", channelOptions, 'grpc-js channel options, e.g. { "grpc.keepalive_time_ms": 10000 }');
  if (methods !== undefined) {
    if (!isPlainObject(methods))
      fail("grpc.methods", methods, "{ [methodName]: { idempotent?, timeoutMs?, retry?, hedge? } }");
    for (const [name, config] of Object.entries(methods)) {
      const at = `grpc.methods.${name}`;
      if (!isPlainObject(config)) fail(at, config, "{ idempotent?, timeoutMs?, retry?, hedge? }");
      checkKeys(config, METHOD_KEYS, at);
      if (config.idempotent !== undefined && typeof config.idempotent !== "boolean")
        fail(`${at}.idempotent`, config.idempotent, "true or false");
      checkMs(`${at}.timeoutMs`, config.timeoutMs, false);
    }
  }
  return value;
}

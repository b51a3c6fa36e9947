/**
 * The envelopes every layer speaks: an immutable request going down the stack, a response
 * coming back up. A layer that needs a different request derives one (`deriveRequest`); it never
 * writes into the one it was given, because `next` may be called again with the original
 * (a retry, a hedge).
 */
import type { Endpoint } from "./endpoint.js";
import type { Cancellation } from "./cancel.js";
import type { CallRoute } from "./route.js";

/** Request headers: lower-case names. A repeated header is an array. */
export type HeaderMap = Readonly<Record<string, string | readonly string[]>>;

/** Response headers as the transport reports them: lower-case names. */
export type ResponseHeaderMap = Readonly<Record<string, string | string[] | undefined>>;

/**
 * A request body as it travels through the stack. `string` and `Uint8Array` can be sent any
 * number of times (retries, hedges); a stream (`kind: "stream"`) can be sent at most once.
 */
export type MeshBody = string | Uint8Array | OneShotBody;

/** A body that can be read once: a WHATWG `ReadableStream` or a Node.js async iterable. */
export interface OneShotBody {
  readonly kind: "stream";
  readonly stream: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;
}

export interface MeshRequest {
  /** Upper-case HTTP method. */
  readonly method: string;
  /** Path and query, starting with `/`. The origin comes from the endpoint the balancer picks. */
  readonly path: string;
  readonly headers: HeaderMap;
  readonly body: MeshBody | null;
  /** True when the classifier may treat a resend after the request reached a server as safe. */
  readonly idempotent: boolean;
  /**
   * The call's cancellation: aborted by the caller's signal or when the total deadline passes.
   * Per-attempt layers derive a child (per-try timeout) and hand it down.
   */
  readonly cancel: Cancellation | null;
  /** Absolute deadline on the client's clock (ms), or `Infinity`. */
  readonly deadline: number;
  /** 0 for the first attempt, 1 for the first resend, … */
  readonly attempt: number;
  /** Set by the balance layer; `null` above it. */
  readonly endpoint: Endpoint | null;
  /** The logical service this call is for. */
  readonly service: string;
  /** Free-form values that layers pass down (keyed by symbols they own). */
  readonly attrs: Readonly<Record<string | symbol, unknown>>;
  /** Per-call timeouts given to `request()`/`fetch()`, if any. */
  readonly timeout: CallTimeout | null;
  /** State shared by every attempt of one call (the request itself stays immutable). */
  readonly call: CallState;
}

/**
 * The mutable record of one logical call, shared by the requests derived for its attempts: how
 * many attempts went out and which endpoints they went to.
 */
export class CallState {
  /** Attempts handed to an endpoint so far. */
  attempts = 0;
  /** Of those, hedges (early resends while an attempt was still out). */
  hedges = 0;
  /**
   * Of those, requeues: resends of a stream the server refused unprocessed (an HTTP/2 GOAWAY's
   * streams above its last id, `REFUSED_STREAM`), which do not count against `maxAttempts`
   * (gRPC's transparent retry, Finagle's requeue) — bounded on their own, and by the budget.
   */
  requeues = 0;
  /** URL of the last endpoint tried ('' before the first attempt). */
  lastEndpoint = "";
  /**
   * When the call entered the stack (the clock's ms; -1 until the observe layer set it). The
   * deadline layer counts the total deadline from it and the retry budget's deposit is dated by
   * it, instead of reading the clock again (~40 ns a reading). Never for an attempt's own time:
   * a queue may have held it since.
   */
  startedAt = -1;
  /**
   * When the balance layer picked the endpoint of the attempt going down now (the clock's ms; -1
   * when none is waiting): the attempt layer takes it as the attempt's start instead of reading
   * the clock again, and clears it — an attempt's time counts from its pick, middleware included.
   */
  pickedAt = -1;
  /** URLs of the endpoints tried so far, so a resend can prefer another one. */
  readonly tried: string[] = [];
  /**
   * Endpoints this call must not be resent to: their TLS handshake failed (a wrong identity, a bad
   * certificate), which another try at the same endpoint would repeat. Null until one fails.
   */
  refused: string[] | null = null;
  /** The failure that refused the last of them, returned when no other endpoint is left. */
  refusal: unknown = undefined;
  /**
   * Set by the balance layer when every ready endpoint has refused this call: a resend could only
   * fail the same way, so the retry layer stops and returns the last failure as it is.
   */
  noResend = false;
  /**
   * Set by the tracing layer while the call has a span: layers note their decisions (a retry and
   * why, a hedge, an open breaker, an exhausted budget, an ejection) as span events. Null otherwise,
   * so a call without tracing pays one null check per decision.
   */
  note: ((name: string, attributes: Readonly<Record<string, string | number>>) => void) | null = null;
  /**
   * What routing decided for this call (its route, backend, endpoint subset and policy overrides),
   * set once by the route layer; null without routes. A call delegated to another client of the
   * mesh (a route's service backend) arrives there with it set, and is not routed again.
   */
  route: CallRoute | null = null;
  /** True when the caller said whether the call is idempotent (`request({ idempotent })`): a route's default does not override it. */
  idempotentGiven = false;
}

export interface CallTimeout {
  readonly attemptMs?: number | false;
  readonly totalMs?: number | false;
}

/** The response envelope. An HTTP error status is a response, never a throw. */
export interface MeshResponse {
  readonly status: number;
  readonly headers: ResponseHeaderMap;
  /** The body as a WHATWG stream (created on first access), or `null` when there is none. */
  readonly body: ReadableStream<Uint8Array> | null;
  text(): Promise<string>;
  json<T = unknown>(): Promise<T>;
  arrayBuffer(): Promise<ArrayBuffer>;
  /** Reads and discards the body so its connection can be reused. Safe to call twice. */
  dump(): Promise<void>;
  /** True once the body has been read, dumped or cancelled. */
  readonly bodyUsed: boolean;
  /**
   * Calls `callback` once the body has been read to its end, dumped, cancelled or has failed.
   * Optional: a response without it is treated as done when it is returned.
   */
  onBodyEnd?(callback: () => void): void;
  /**
   * The whole body if it has already arrived, taken (the body is then used); null when it has not
   * (read it from `body` then), or for a status without a body. Optional: lets `client.fetch()`
   * hand a small body to its `Response` as bytes instead of a stream.
   */
  takeBody?(): Uint8Array | null;
}

/** A service: one request in, one response out. Transports are the terminal services. */
export type Service = (req: MeshRequest) => Promise<MeshResponse>;

/** A layer wraps the service below it. It may call `next` zero, one or many times. */
export type Layer = (next: Service) => Service;

/** Plain middleware for `options.use`: `(req, next) => response`. */
export type Middleware = (req: MeshRequest, next: Service) => Promise<MeshResponse>;

/** Returned by every subscription; calling it twice is harmless. */
export type Disposer = () => void;

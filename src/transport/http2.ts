/**
 * `http2Transport()` — HTTP/2 with `node:http2`: one session (connection) per endpoint origin and
 * every attempt a stream on it. `http://` endpoints speak h2c with prior knowledge (loopback, a
 * cluster's plain network), `https://` ones TLS with ALPN `h2` and the same `tls` options as the
 * undici transport (trust bundle, client certificate, SPIFFE identity, rotation; transport/tls.ts).
 *
 * Why `node:http2` and not undici's `allowH2`: on loopback here (concurrency 32, one connection,
 * a `node:http2` server in another process) bare `node:http2` streams ran 11,100–13,800 req/s at
 * 68–81 µs of client CPU per call, over TLS and h2c alike; undici's h2 Pool 7,100–8,600 req/s at
 * 107–145 µs even at its best setting (`pipelining: 100` — its default of one stream at a time ran
 * 4,100–5,800) and 8,900 with a bare dispatch handler; undici's h2 is built on `node:http2`, so it
 * can only add. undici 7's `H2CClient` does h2c, at the same cost (7,800–8,500 req/s).
 *
 * What it does that HTTP/1.1 cannot:
 * - Cancellation (a caller's abort, a per-try timeout, a hedge that lost) resets one stream with
 *   `NGHTTP2_CANCEL`; the session and its other streams go on. Over HTTP/1.1 a cancelled request
 *   costs its keep-alive connection.
 * - GOAWAY: streams above the server's last stream id, and streams it resets with REFUSED_STREAM,
 *   fail with `RefusedStreamError` (`WEFT_ERR_REFUSED_STREAM`), which the classifier treats as
 *   never sent: the retry layer resends them, POSTs included, to another endpoint or a new session
 *   (Finagle's requeue). Streams at or below the last id finish normally.
 *
 * Sessions (http2-session.ts): a second session to the same origin only when every session
 * carries as many streams as the server's SETTINGS_MAX_CONCURRENT_STREAMS allows, up to
 * `maxSessions`; past that, streams wait in weft's queue for a slot. A session with streams open
 * that falls silent is PINGed, and one whose peer answers nothing is dropped (`keepAlive`,
 * http2-keepalive.ts).
 */
import type { OutgoingHttpHeaders } from "node:http2";
import { systemClock } from "../core/clock.js";
import { checkInteger, checkKeys, checkMs, fail, isPlainObject } from "../core/validate.js";
import type { ConnectionsSnapshot, Transport, TransportFactory } from "../core/transport.js";
import type { MeshRequest, MeshResponse } from "../core/types.js";
import type { KeepAliveConfig } from "./http2-keepalive.js";
import { Http2Response } from "./http2-response.js";
import { OriginSessions, type SessionConfig } from "./http2-session.js";
import { TlsClient, type TlsClientSnapshot, type TlsOptions } from "./tls.js";

export interface Http2TransportOptions {
  /**
   * Sessions (connections) per endpoint origin. Another is opened only when every session carries
   * as many streams as the server allows; past this many, streams queue for a free slot. Default 4.
   */
  readonly maxSessions?: number;
  /** Streams per session at most, when lower than the server's SETTINGS_MAX_CONCURRENT_STREAMS. Default: the server's. */
  readonly maxConcurrentStreams?: number;
  /** Time to connect (TCP, and TLS for https://) before the streams waiting fail as never sent, ms. Default 10 000. */
  readonly connectTimeoutMs?: number;
  /** A session with no stream open and no traffic for this long is closed, ms; `false`: never. Default 60 000. */
  readonly idleTimeoutMs?: number | false;
  /**
   * Dead-peer detection with HTTP/2 PING frames; `false`: none. A session with streams open that
   * has received nothing (no frame at all) for `intervalMs` is sent a PING (so one goes out after
   * one to two intervals of silence); if neither its ACK nor any other frame arrives within
   * `timeoutMs`, the session is dead: it takes no new stream and is destroyed, and its streams
   * fail with `ERR_HTTP2_PING_TIMEOUT` — possibly processed, so only idempotent requests are resent
   * (to another endpoint, or a new session). Busy sessions (frames arriving) and idle ones (no
   * stream open) are never PINGed, so PINGs cost nothing under load and never hold an idle session
   * open against `idleTimeoutMs`.
   *
   * Default `{ intervalMs: 10_000, timeoutMs: 5_000 }`: on, unlike gRPC and Envoy (off until
   * configured), because without it a session whose peer froze, or whose path dropped without a
   * FIN, takes new calls until the kernel gives up on the socket (~15 minutes of retransmissions
   * on Linux; never when nothing sent is unacknowledged), and outlier ejection only pauses the
   * endpoint: the dead session is back when the endpoint returns. 10 s is the shortest keepalive
   * time gRPC's clients accept (grpc-java raises smaller values to it). An ACK is a control frame
   * the peer's HTTP/2 stack sends as soon as it reads its socket (no flow control, no handler), so
   * 5 s is far beyond any round trip: a peer silent that long has not read its socket for 5 s
   * while calls wait on it. Servers that police PINGs (grpc-go and grpc-java allow one per
   * 5 minutes by default, and answer more with GOAWAY ENHANCE_YOUR_CALM) need `intervalMs` of
   * 300 000 or more, or `false`; weft's gRPC client runs on grpc-js, not on this transport.
   * @example http2Transport({ keepAlive: { intervalMs: 30_000, timeoutMs: 10_000 } })
   */
  readonly keepAlive?: { readonly intervalMs?: number; readonly timeoutMs?: number } | false;
  /**
   * Flow-control window of each stream: the bytes a server may send on one stream before the
   * client has read them (SETTINGS_INITIAL_WINDOW_SIZE). Default 1 MiB (1 048 576). HTTP/2's own
   * default, 65 535 bytes, caps one stream at a window per round trip — 64 KiB a millisecond, and
   * 4 MiB responses took 1.45× as long over loopback; Envoy's and grpc-go's grown windows are in
   * the MiBs too. It is also what one unread response may buffer: bodies nobody reads hold at most
   * this much each.
   */
  readonly streamWindowBytes?: number;
  /**
   * Flow-control window of the whole session (all its streams together). Default 8 MiB, at least
   * `streamWindowBytes`: a few large responses at once do not stall each other.
   */
  readonly connectionWindowBytes?: number;
  /**
   * On `close()` and when an endpoint leaves, how long streams in flight (and bodies nobody reads)
   * may take to finish before their sessions are destroyed, ms. Default 5 000.
   */
  readonly closeGraceMs?: number;
  /**
   * TLS for `https://` endpoints: the trust bundle, a client certificate (mTLS), the SPIFFE
   * identity servers must present, rotation from files (`tlsFiles()`); see transport/tls.ts. A
   * rotation closes the sessions gracefully, so new streams go to a session with the new material.
   * Without it, `https://` endpoints are verified against Node's root CAs and their host name.
   */
  readonly tls?: TlsOptions;
}

const OPTION_KEYS = [
  "maxSessions",
  "maxConcurrentStreams",
  "connectTimeoutMs",
  "idleTimeoutMs",
  "keepAlive",
  "streamWindowBytes",
  "connectionWindowBytes",
  "closeGraceMs",
  "tls",
];

/** `keepAlive`'s defaults (see the option): a PING after 10–20 s of silence with streams open, 5 s for its ACK. */
const KEEP_ALIVE_DEFAULTS: KeepAliveConfig = Object.freeze({ intervalMs: 10_000, timeoutMs: 5_000 });

/**
 * An HTTP/2 transport: streams multiplexed on one session per endpoint origin, h2c for `http://`,
 * TLS + ALPN for `https://`.
 * @example createClient({ service: "catalog", discovery: staticDiscovery(["http://127.0.0.1:8081"]), transport: http2Transport() })
 */
export function http2Transport(options: Http2TransportOptions = {}): TransportFactory {
  const given: unknown = options;
  if (!isPlainObject(given)) fail("transport", given, `an options object { ${OPTION_KEYS.join("?, ")}? } or nothing`);
  checkKeys(given, OPTION_KEYS, "transport");
  const idle = checkMs("transport.idleTimeoutMs", options.idleTimeoutMs, true);
  const config: Omit<SessionConfig, "tls"> = {
    maxSessions: checkInteger("transport.maxSessions", options.maxSessions, 4, 1),
    maxConcurrentStreams: checkInteger("transport.maxConcurrentStreams", options.maxConcurrentStreams, Infinity, 1),
    connectTimeoutMs:
      (checkMs("transport.connectTimeoutMs", options.connectTimeoutMs, false) as number | undefined) ?? 10_000,
    idleTimeoutMs: idle === false ? 0 : (idle ?? 60_000),
    keepAlive: keepAliveConfig(options.keepAlive),
    ...windows(options.streamWindowBytes, options.connectionWindowBytes),
    clock: systemClock,
  };
  const closeGraceMs = (checkMs("transport.closeGraceMs", options.closeGraceMs, false) as number | undefined) ?? 5_000;
  // Checked now, so bad TLS options fail where the transport is described, not at the first call
  // (quietly: the transport made from this warns, once).
  if (options.tls !== undefined)
    new TlsClient(
      isPlainObject(options.tls) ? { ...options.tls, onWarning: () => {} } : options.tls,
      {},
      "transport.tls",
    ).close();
  return { name: "http2", create: () => new Http2Transport(config, closeGraceMs, options.tls) };
}

/** HTTP/2's smallest window (its default) and largest (2³¹ − 1), RFC 9113 §6.9. */
const MIN_WINDOW = 65_535;
const MAX_WINDOW = 2 ** 31 - 1;

function windows(stream: unknown, connection: unknown): { streamWindow: number; connectionWindow: number } {
  const inRange = `an integer from ${MIN_WINDOW} (HTTP/2's default) to ${MAX_WINDOW} bytes`;
  const streamWindow = checkInteger("transport.streamWindowBytes", stream, 1 << 20, MIN_WINDOW);
  if (streamWindow > MAX_WINDOW) fail("transport.streamWindowBytes", stream, inRange);
  const connectionWindow = checkInteger(
    "transport.connectionWindowBytes",
    connection,
    Math.max(8 << 20, streamWindow),
    MIN_WINDOW,
  );
  if (connectionWindow > MAX_WINDOW) fail("transport.connectionWindowBytes", connection, inRange);
  if (connectionWindow < streamWindow)
    fail("transport.connectionWindowBytes", connection, `at least transport.streamWindowBytes (${streamWindow})`);
  return { streamWindow, connectionWindow };
}

function keepAliveConfig(value: unknown): KeepAliveConfig | null {
  if (value === false) return null;
  if (value === undefined) return KEEP_ALIVE_DEFAULTS;
  if (!isPlainObject(value)) fail("transport.keepAlive", value, "{ intervalMs?, timeoutMs? } or false (off)");
  checkKeys(value, ["intervalMs", "timeoutMs"], "transport.keepAlive");
  return Object.freeze({
    intervalMs:
      (checkMs("transport.keepAlive.intervalMs", value.intervalMs, false) as number | undefined) ??
      KEEP_ALIVE_DEFAULTS.intervalMs,
    timeoutMs:
      (checkMs("transport.keepAlive.timeoutMs", value.timeoutMs, false) as number | undefined) ??
      KEEP_ALIVE_DEFAULTS.timeoutMs,
  });
}

class Http2Transport implements Transport {
  readonly name = "http2";
  readonly #origins = new Map<string, OriginSessions>();
  readonly #config: SessionConfig;
  readonly #closeGraceMs: number;
  readonly #tls: TlsClient | null;
  readonly #unsubscribe: (() => void) | null;
  #closed = false;

  constructor(config: Omit<SessionConfig, "tls">, closeGraceMs: number, tls: TlsOptions | undefined) {
    this.#tls = tls === undefined ? null : new TlsClient(tls, {}, "transport.tls");
    this.#config = { ...config, tls: this.#tls };
    this.#closeGraceMs = closeGraceMs;
    // New material: new streams go to new sessions (made with it); the old ones finish their streams.
    this.#unsubscribe =
      this.#tls?.source.onChange(() => {
        for (const origin of this.#origins.values()) origin.retireAll();
      }) ?? null;
  }

  tlsSnapshot(): TlsClientSnapshot | undefined {
    return this.#tls?.snapshot();
  }

  send(req: MeshRequest): Promise<MeshResponse> {
    const endpoint = req.endpoint;
    if (endpoint === null)
      return Promise.reject(new Error("http2 transport: request has no endpoint (is the balance layer missing?)"));
    let origin = this.#origins.get(endpoint.origin);
    if (origin === undefined) {
      if (this.#closed)
        return Promise.reject(Object.assign(new Error("transport is closed"), { code: "UND_ERR_CLOSED" }));
      origin = new OriginSessions(endpoint.origin, this.#config);
      this.#origins.set(endpoint.origin, origin);
    }
    const cancel = req.cancel;
    if (cancel !== null && cancel.aborted) return Promise.reject(cancel.reason);
    const sessions = origin;
    // A throw in the executor (an invalid header name) rejects the attempt.
    return new Promise<MeshResponse>((resolve, reject) => {
      const headers = requestHeaders(req, endpoint.basePath + req.path, sessions);
      sessions.start(new Http2Response(resolve, reject, cancel, headers, req.body));
    });
  }

  connections(origin: string): ConnectionsSnapshot | null {
    return this.#origins.get(origin)?.connections() ?? null;
  }

  async release(origin: string): Promise<void> {
    const sessions = this.#origins.get(origin);
    if (sessions === undefined) return;
    this.#origins.delete(origin);
    await sessions.close(this.#closeGraceMs);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#origins.values()];
    this.#origins.clear();
    this.#unsubscribe?.();
    await Promise.all(all.map((sessions) => sessions.close(this.#closeGraceMs)));
    this.#tls?.close();
  }
}

/** Connection-specific headers HTTP/2 forbids (RFC 9113 §8.2.2); `host` becomes `:authority`. */
const DROPPED = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host"]);
/** RFC 9110 token: what Node requires of a header name (it destroys the whole session on another). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

function requestHeaders(req: MeshRequest, path: string, sessions: OriginSessions): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {
    ":method": req.method,
    ":path": path,
    ":scheme": sessions.scheme,
    ":authority": sessions.authority,
  };
  const headers = req.headers;
  for (const name in headers) {
    const value = headers[name] as string | string[];
    if (DROPPED.has(name)) {
      if (name === "host" && typeof value === "string") out[":authority"] = value;
      continue;
    }
    if (!TOKEN.test(name)) throw new TypeError(`invalid HTTP/2 request header name ${JSON.stringify(name)}`);
    if (name === "te" && value !== "trailers") continue;
    out[name] = value;
  }
  const body = req.body;
  if (body !== null && out["content-length"] === undefined) {
    if (typeof body === "string") out["content-length"] = Buffer.byteLength(body);
    else if (body instanceof Uint8Array) out["content-length"] = body.byteLength;
  }
  return out;
}

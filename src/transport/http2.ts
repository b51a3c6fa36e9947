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
 * `maxSessions`; past that, streams wait in nghttp2's queue for a slot.
 */
import type { OutgoingHttpHeaders } from "node:http2";
import { checkInteger, checkKeys, checkMs, fail, isPlainObject } from "../core/validate.js";
import type { Transport, TransportFactory } from "../core/transport.js";
import type { MeshRequest, MeshResponse } from "../core/types.js";
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

const OPTION_KEYS = ["maxSessions", "maxConcurrentStreams", "connectTimeoutMs", "idleTimeoutMs", "closeGraceMs", "tls"];

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

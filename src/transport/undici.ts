/**
 * `undiciTransport()` — the default transport: a keep-alive undici `Pool` per endpoint origin,
 * requests through `pool.dispatch()` with weft's own handler (dispatch.ts), which is also the
 * response: no Readable, no parsed headers and no AbortController per call unless someone asks.
 *
 * undici.request is ~4× global fetch and ~5× got on loopback here (FACTS.md), which is why it is
 * the default, and why `client.request()` hands the response over with its body unread.
 */
import { Pool, type Dispatcher } from "undici";
import { fail, isPlainObject } from "../core/validate.js";
import type { ConnectionsSnapshot, Transport, TransportFactory } from "../core/transport.js";
import type { MeshRequest, MeshResponse } from "../core/types.js";
import { nodeBody } from "./body.js";
import { DispatchResponse } from "./dispatch.js";
import { undiciInstrumented } from "./instrumented.js";
import { IdentityError, TlsClient, tlsFailure, type TlsClientSnapshot, type TlsOptions } from "./tls.js";

export interface UndiciTransportOptions {
  /** Connections per endpoint origin. Default 64. */
  readonly connections?: number;
  /** HTTP/1.1 pipelining depth. Default 1 (none). */
  readonly pipelining?: number;
  /** How long an idle keep-alive connection is kept, ms. Default 4 000 (undici's). */
  readonly keepAliveTimeoutMs?: number;
  /** TCP connect timeout, ms. Default 10 000. weft's attempt timeout usually ends a call first. */
  readonly connectTimeoutMs?: number;
  /**
   * On `close()`, how long requests in flight (and response bodies nobody reads) may take to
   * finish before their connections are destroyed, ms. Default 5 000.
   */
  readonly closeGraceMs?: number;
  /**
   * TLS for `https://` endpoints: the trust bundle, a client certificate (mTLS), the SPIFFE
   * identity servers must present, rotation from files (`tlsFiles()`). See transport/tls.ts.
   * Without it, `https://` endpoints are verified against Node's root CAs and their host name.
   */
  readonly tls?: TlsOptions;
  /** Extra options for each `Pool` (`allowH2`, …; with `tls`, not `connect`). */
  readonly pool?: Omit<Pool.Options, "connections" | "pipelining" | "keepAliveTimeout">;
}

/**
 * The default transport.
 * @example createClient({ service: "catalog", discovery, transport: undiciTransport({ connections: 128 }) })
 */
export function undiciTransport(options: UndiciTransportOptions = {}): TransportFactory {
  for (const key of ["connections", "pipelining", "keepAliveTimeoutMs", "connectTimeoutMs", "closeGraceMs"] as const) {
    const value = options[key];
    if (value !== undefined && !(Number.isInteger(value) && value > 0))
      fail(`transport.${key}`, value, "a positive integer");
  }
  if (options.tls !== undefined && options.pool?.connect !== undefined)
    fail("transport.pool.connect", options.pool.connect, "absent when `tls` is given (tls builds the connector)");
  // Checked now, so bad TLS options fail where the transport is described, not at the first call
  // (quietly: the transport made from this warns, once).
  if (options.tls !== undefined)
    new TlsClient(
      isPlainObject(options.tls) ? { ...options.tls, onWarning: () => {} } : options.tls,
      {},
      "transport.tls",
    ).close();
  return { name: "undici", create: () => new UndiciTransport(options) };
}

class UndiciTransport implements Transport {
  readonly name = "undici";
  readonly instrumented = undiciInstrumented;
  /** A pool per origin, with how its failures before a response are explained (https: TLS ones). */
  readonly #pools = new Map<string, { readonly pool: Pool; readonly explain: ((error: unknown) => unknown) | null }>();
  readonly #options: Pool.Options;
  readonly #closeGraceMs: number;
  readonly #tls: TlsClient | null;
  #closed = false;

  constructor(options: UndiciTransportOptions) {
    this.#closeGraceMs = options.closeGraceMs ?? 5_000;
    const connectTimeout = options.connectTimeoutMs ?? 10_000;
    this.#tls =
      options.tls === undefined ? null : new TlsClient(options.tls, { timeout: connectTimeout }, "transport.tls");
    this.#options = {
      ...options.pool,
      connections: options.connections ?? 64,
      pipelining: options.pipelining ?? 1,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 4_000,
      connectTimeout,
      ...(this.#tls === null ? {} : { connect: this.#tls.connect }),
    };
  }

  tlsSnapshot(): TlsClientSnapshot | undefined {
    return this.#tls?.snapshot();
  }

  send(req: MeshRequest): Promise<MeshResponse> {
    const endpoint = req.endpoint;
    if (endpoint === null)
      return Promise.reject(new Error("undici transport: request has no endpoint (is the balance layer missing?)"));
    let entry = this.#pools.get(endpoint.origin);
    if (entry === undefined) {
      if (this.#closed)
        return Promise.reject(Object.assign(new Error("transport is closed"), { code: "UND_ERR_CLOSED" }));
      const origin = endpoint.origin;
      entry = {
        pool: new Pool(origin, this.#options),
        explain: origin.startsWith("https:") ? (error: unknown) => this.#failure(error, origin) : null,
      };
      this.#pools.set(origin, entry);
    }
    const options: Dispatcher.DispatchOptions = {
      path: endpoint.basePath + req.path,
      method: req.method,
      headers: req.headers as Record<string, string | string[]>,
      body: nodeBody(req.body) as Dispatcher.DispatchOptions["body"],
    };
    const { pool, explain } = entry;
    return new Promise<MeshResponse>((resolve, reject) => {
      pool.dispatch(options, new DispatchResponse(resolve, reject, req.cancel, explain));
    });
  }

  /** A TLS handshake failure as WEFT_ERR_IDENTITY / WEFT_ERR_TLS naming the endpoint; anything else as it is. */
  #failure(error: unknown, origin: string): unknown {
    const failure = tlsFailure(error, origin);
    if (failure === undefined) return error;
    if (failure instanceof IdentityError) return new IdentityError(origin, failure.expected, failure.presented);
    this.#tls?.count(failure);
    return failure;
  }

  connections(origin: string): ConnectionsSnapshot | null {
    const entry = this.#pools.get(origin);
    if (entry === undefined) return null;
    const stats = entry.pool.stats;
    return { open: stats.connected, active: stats.running, queued: stats.pending };
  }

  async release(origin: string): Promise<void> {
    const entry = this.#pools.get(origin);
    if (entry === undefined) return;
    this.#pools.delete(origin);
    await this.#closeGracefully(entry.pool);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((entry) => this.#closeGracefully(entry.pool)));
    this.#tls?.close();
  }

  /** Graceful first (in-flight requests finish), then destroy whatever is still open at the grace limit. */
  async #closeGracefully(pool: Pool): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<"late">((resolve) => {
      // Real time: the grace real sockets get to finish on close() (the transport takes no Clock).
      // eslint-disable-next-line no-restricted-globals
      timer = setTimeout(() => resolve("late"), this.#closeGraceMs);
    });
    const result = await Promise.race([
      pool.close().then(
        () => "closed" as const,
        () => "late" as const,
      ),
      grace,
    ]);
    clearTimeout(timer);
    if (result === "late") await pool.destroy().catch(() => {});
  }
}

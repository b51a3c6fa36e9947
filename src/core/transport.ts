/**
 * A transport is the terminal service: it sends one attempt to `req.endpoint` and returns its
 * response. Transports import no policy, and policies import no transport.
 */
import type { MeshRequest, MeshResponse } from "./types.js";

export interface Transport {
  readonly name: string;
  /** Sends `req` (whose `endpoint` is set) and resolves with the response headers. */
  send(req: MeshRequest): Promise<MeshResponse>;
  /** Releases the connections held for an endpoint that left the set. */
  release?(origin: string): Promise<void>;
  /** Closes every connection. */
  close(): Promise<void>;
  /**
   * True when an HTTP instrumentation (OpenTelemetry's undici or http instrumentation) is hooked
   * into this transport and will inject the trace context itself: weft then leaves the header to
   * it (one `traceparent`, never two) and makes the attempt span the active parent of its span.
   */
  instrumented?(): boolean;
  /** TLS state (identity expected, failures, certificate and expiry) when the transport originates TLS. */
  tlsSnapshot?(): unknown;
  /** The connections this transport holds to `origin` now; null when it holds none (or cannot say). */
  connections?(origin: string): ConnectionsSnapshot | null;
}

/** A transport's connections to one endpoint, in `client.snapshot().endpoints[].connections`. */
export interface ConnectionsSnapshot {
  /** Open connections: HTTP/1.1 sockets, HTTP/2 sessions (draining ones included). */
  readonly open: number;
  /** Requests on them now (HTTP/2: streams open). */
  readonly active: number;
  /** Requests waiting for a connection or a stream slot. */
  readonly queued: number;
  /** HTTP/2: sessions that received a GOAWAY, since the transport started. */
  readonly goaways?: number;
  /** HTTP/2: sessions dropped because a PING went unanswered (a dead peer), since the transport started. */
  readonly deadSessions?: number;
  /** HTTP/2: the round trip of the newest PING answered on an open session, ms; null before any. */
  readonly pingRttMs?: number | null;
}

/**
 * A transport description (`undiciTransport()`, `fetchTransport()`, `gotTransport(got)`). A mesh
 * creates one transport per description and shares it between the clients that name it, so
 * clients of one mesh share connection pools; `mesh.close()` closes it.
 */
export interface TransportFactory {
  readonly name: string;
  create(): Transport;
}

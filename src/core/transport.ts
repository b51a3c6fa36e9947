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

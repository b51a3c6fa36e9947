/**
 * What a `weft/server` inbound reports about itself: the shape `mesh.snapshot().servers`, the
 * admin page and Prometheus read. It lives in core because three folders meet on it — `server/`
 * makes it, `client/`'s mesh carries it, `admin/` shows it — and none of them imports another.
 */
import type { CallStatsSnapshot } from "./call-stats.js";
import type { TlsSnapshot } from "./tls-snapshot.js";

export type ServerState = "serving" | "draining" | "closed";

export interface ServerSnapshot {
  /** The service this server is. */
  readonly service: string;
  /** `serving`; `draining` once `drain()` began (readiness fails); `closed` when it is over. */
  readonly state: ServerState;
  /** Requests being handled now (admitted and not yet finished). */
  readonly inflight: number;
  readonly counters: {
    /** Requests that reached the inbound middleware (health checks excluded). */
    readonly requests: number;
    /** Admitted requests answered with 5xx by the application. */
    readonly errors: number;
    /** Admitted requests whose caller went away before the response finished. */
    readonly aborted: number;
    /** Turned away with 503 by admission control (all classes). */
    readonly shed: number;
    /** Refused with 504: the caller's deadline had already passed on arrival. */
    readonly expired: number;
    /** Refused with 400: an unreadable deadline header. */
    readonly badDeadline: number;
  };
  /** Authorization decisions so far (null when `authz` is off). */
  readonly authz: {
    readonly allow: number;
    readonly deny: number;
    readonly unauthenticated: number;
    readonly malformed: number;
  } | null;
  /** Admission control (null when `shed` is off). */
  readonly admission: {
    readonly adaptive: boolean;
    readonly limit: number;
    readonly inflight: number;
    readonly shed: Readonly<Record<"critical" | "high" | "normal" | "low", number>>;
    readonly minRttMs: number | null;
    readonly sampleRttMs: number | null;
  } | null;
  /**
   * The admitted requests' rates, success % (5xx are failures) and latency over the last 10 s,
   * one point per second for 5 minutes. Requests refused at the door (shed, denied, expired) are
   * not in it — they are in `counters`, `authz` and `admission.shed` — so under overload `stats`
   * shows what was served, and the counters what was turned away. A request whose caller went away
   * counts as neither success nor failure, but its time until then is in the latency.
   */
  readonly stats: CallStatsSnapshot;
  /**
   * TLS termination when `inbound({ tls })` is set (null otherwise): the server certificate and
   * trust bundle in use (version, expiry), whether client certificates are required, and the
   * handshakes that failed, by reason.
   */
  readonly tls: {
    readonly clientCert: "require" | "request" | "none";
    readonly material: TlsSnapshot;
    readonly handshakeFailures: Readonly<Record<string, number>>;
  } | null;
}

/** What a mesh holds to show a server in its snapshot: anything with a service name and a snapshot. */
export interface ServerSource {
  readonly service: string;
  snapshot(): ServerSnapshot;
}

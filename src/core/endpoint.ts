/**
 * Per-endpoint state, shared by the policies that read or write it: the balancer's load
 * (in-flight, peak-EWMA latency), health (state, failures) and the snapshot. It lives in `core/`
 * so that `balance/` and `health/` share it without importing each other.
 */
export type EndpointHealth = "healthy" | "ejected" | "probing" | "draining";

/** The per-endpoint circuit breaker's state (`closed` when breakers are off). */
export type BreakerState = "closed" | "open" | "halfOpen";

/** What discovery publishes for one endpoint. */
export interface EndpointInfo {
  /** `http://host:port` (an optional base path is kept and prefixed to every request path). */
  readonly url: string;
  /** Relative weight (default 1). */
  readonly weight?: number;
  readonly zone?: string;
  readonly metadata?: Readonly<Record<string, string>>;
}

export class Endpoint {
  /** The URL as discovery gave it, normalized (no trailing slash). */
  readonly url: string;
  /** `protocol//host:port`: the key of the transport's connection pool. */
  readonly origin: string;
  readonly hostname: string;
  readonly port: number;
  /** Path prefix from the URL ('' for none). */
  readonly basePath: string;
  weight: number;
  zone: string | undefined;
  metadata: Readonly<Record<string, string>>;

  state: EndpointHealth = "healthy";
  /** Written by the breaker layer; an open breaker takes the endpoint out of `ready`. */
  breaker: BreakerState = "closed";
  /** Written by active health checks: false after `unhealthyThreshold` failed checks. */
  activeHealthy = true;
  /** Clock time the endpoint last became available (joined, or returned from ejection): slow start ramps from here. */
  readySince: number;
  /** Times outlier detection has ejected it (the ejection time grows with it). */
  ejections = 0;
  /** While ejected: the clock time it returns. */
  ejectedUntil = 0;
  /** Attempts sent and not yet answered. */
  inflight = 0;
  /** Sum of the start times of the attempts in flight: their mean age is `now - sum / inflight`. */
  pendingStartSum = 0;

  /** The mean age of the attempts in flight at `nowMs`, ms (0 with none). */
  pendingAgeMs(nowMs: number): number {
    return this.inflight === 0 ? 0 : nowMs - this.pendingStartSum / this.inflight;
  }
  /** Load estimate in ms (peak EWMA); `NaN` until the first response. Written by the balancer. */
  ewmaMs = Number.NaN;
  /** Clock time of the last EWMA update. */
  ewmaStamp = 0;
  /** Attempts answered, and those the classifier called failures. */
  requests = 0;
  failures = 0;
  consecutiveFailures = 0;
  /** Clock time the endpoint joined the set. */
  readonly addedAt: number;

  constructor(info: EndpointInfo, now: number) {
    const parsed = new URL(info.url);
    this.origin = parsed.origin;
    this.hostname = parsed.hostname.startsWith("[") ? parsed.hostname.slice(1, -1) : parsed.hostname;
    this.port = parsed.port === "" ? (parsed.protocol === "https:" ? 443 : 80) : Number(parsed.port);
    this.basePath = parsed.pathname === "/" ? "" : parsed.pathname.replace(/\/+$/, "");
    this.url = this.origin + this.basePath;
    this.weight = info.weight ?? 1;
    this.zone = info.zone;
    this.metadata = info.metadata ?? {};
    this.addedAt = now;
    this.readySince = now;
  }

  /** True when new requests may be sent here. */
  get available(): boolean {
    return (this.state === "healthy" || this.state === "probing") && this.breaker !== "open" && this.activeHealthy;
  }
}

/**
 * The endpoints of one client, updated from discovery. `ready` is the list pickers choose from;
 * it is rebuilt only when the set or a state changes, never per call.
 */
export class EndpointSet {
  #byUrl = new Map<string, Endpoint>();
  #all: Endpoint[] = [];
  #ready: Endpoint[] = [];
  #panic = false;
  /** Bumped on every change, so pickers can rebuild derived structures (rings, tables) lazily. */
  version = 0;
  /**
   * Envoy's panic threshold: when fewer than this share (0–1) of the endpoints are available,
   * balance across all of them (except those draining or with an open breaker) rather than
   * melting the survivors.
   * Default 0.5; 0 turns panic mode off.
   */
  panicThreshold = 0.5;

  /** True while fewer than `panicThreshold` of the endpoints are available and all are used. */
  get panic(): boolean {
    return this.#panic;
  }

  get all(): readonly Endpoint[] {
    return this.#all;
  }

  get ready(): readonly Endpoint[] {
    return this.#ready;
  }

  get(url: string): Endpoint | undefined {
    return this.#byUrl.get(url);
  }

  /**
   * Replaces the set with `infos`. Endpoints that stay keep their state and load; new ones start
   * fresh; removed ones are returned so the caller can drain them (in-flight attempts finish).
   */
  update(infos: readonly EndpointInfo[], now: number): { added: Endpoint[]; removed: Endpoint[] } {
    const next = new Map<string, Endpoint>();
    const added: Endpoint[] = [];
    for (const info of infos) {
      const fresh = new Endpoint(info, now);
      const existing = this.#byUrl.get(fresh.url) ?? next.get(fresh.url);
      if (existing !== undefined) {
        existing.weight = fresh.weight;
        existing.zone = fresh.zone;
        existing.metadata = fresh.metadata;
        if (existing.state === "draining") existing.state = "healthy";
        next.set(existing.url, existing);
      } else {
        next.set(fresh.url, fresh);
        added.push(fresh);
      }
    }
    const removed: Endpoint[] = [];
    for (const [url, endpoint] of this.#byUrl) {
      if (!next.has(url)) {
        endpoint.state = "draining";
        removed.push(endpoint);
      }
    }
    this.#byUrl = next;
    this.#all = [...next.values()];
    this.refresh();
    return { added, removed };
  }

  /** Rebuilds `ready` after a state change. */
  refresh(): void {
    const available = this.#all.filter((e) => e.available);
    // Panic overrides ejection and failing health checks, not an open breaker: a breaker is the
    // last guard, and when every one is open the call fails fast instead.
    const candidates = this.#all.filter((e) => e.state !== "draining" && e.breaker !== "open");
    const wasPanic = this.#panic;
    this.#panic = candidates.length > 0 && available.length < this.panicThreshold * candidates.length;
    const ready = this.#panic ? candidates : available;
    // Keep the same array when the members did not change (a breaker going half-open): pickers
    // and the zone split rebuild only when the ready array itself changes. Outside panic mode the
    // members are exactly the available endpoints, so equal members mean equal health; in panic
    // mode they do not, so a new array is made every time.
    if (this.#panic || wasPanic || !sameMembers(ready, this.#ready)) {
      this.#ready = ready;
      this.version++;
    }
  }
}

function sameMembers(a: readonly Endpoint[], b: readonly Endpoint[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

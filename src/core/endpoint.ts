/**
 * Per-endpoint state, one owner per field: discovery's facts and availability (`EndpointSet`),
 * the balancer's load (in-flight, peak-EWMA latency, counts — the balance layer). Policies that
 * can hold an endpoint out (breaker, outlier detection, health checks) keep their own records
 * and answer `isAvailable(endpoint)` as an `AvailabilityGate`; the set asks them when one signals
 * a change, and never per call. It lives in `core/` so that `balance/` and `health/` share it
 * without importing each other.
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

/**
 * A policy that can hold endpoints out of the ready list. It keeps its own per-endpoint records;
 * the `EndpointSet` asks it on `refresh()` — after the policy signalled a change — never per call.
 */
export interface AvailabilityGate {
  /** The policy's name (`"breaker"`, `"outlier"`, `"healthCheck"`). */
  readonly name: string;
  /**
   * True when panic mode may still send to an endpoint this gate holds out (outlier ejection,
   * failing health checks); false for a gate that is the last guard (an open breaker): when every
   * endpoint is held by one, calls fail fast instead.
   */
  readonly panicOverrides: boolean;
  /** False while this policy holds the endpoint out. */
  isAvailable(endpoint: Endpoint): boolean;
}

/** Where slow start ramps endpoints from that become available while no other one serves: nowhere. */
const NO_RAMP = Number.NEGATIVE_INFINITY;

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

  /**
   * `"draining"` once discovery removed it (attempts in flight finish; no new picks). Written by
   * the `EndpointSet` only.
   */
  state: "healthy" | "draining" = "healthy";
  /**
   * True when new requests may be sent here: not draining, and no availability gate (breaker,
   * outlier detection, health checks) holds it out. Written by `EndpointSet.refresh` only, from
   * what the gates answer; each gate keeps its own records.
   */
  available = false;
  /**
   * Clock time the endpoint last became available (joined, or came back from a gate): slow start
   * ramps from here. Written by `EndpointSet.refresh` only.
   */
  readySince: number;
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
  #guarded = false;
  readonly #gates: AvailabilityGate[] = [];
  /** Bumped on every change, so pickers can rebuild derived structures (rings, tables) lazily. */
  version = 0;
  /**
   * Envoy's panic threshold: when fewer than this share (0–1) of the endpoints are available,
   * balance across all of them (except those draining or held by a gate panic does not override,
   * an open breaker) rather than melting the survivors.
   * Default 0.5; 0 turns panic mode off.
   */
  panicThreshold = 0.5;

  /** Adds a policy that can hold endpoints out; call `refresh()` whenever it signals a change. */
  addGate(gate: AvailabilityGate): void {
    this.#gates.push(gate);
  }

  /** True while fewer than `panicThreshold` of the endpoints are available and all are used. */
  get panic(): boolean {
    return this.#panic;
  }

  /**
   * True when nothing is ready and some endpoint is held out by a gate panic mode does not
   * override (its breaker is open): calls fail fast with that reason rather than "no endpoints".
   */
  get guardedOut(): boolean {
    return this.#guarded;
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
        endpoint.available = false;
        removed.push(endpoint);
      }
    }
    this.#byUrl = next;
    this.#all = [...next.values()];
    this.refresh(now);
    return { added, removed };
  }

  /**
   * Asks the gates again and rebuilds `ready` — after the set changed or a gate signalled a
   * change, never per call. An endpoint that becomes available while another one serves ramps up
   * from `now` (slow start); the endpoints of the first set, or one that returns while every other
   * one is out, do not (ramping is relative: alone, it is all there is).
   */
  refresh(now: number): void {
    const all = this.#all;
    const gates = this.#gates;
    let becoming: Endpoint[] | null = null;
    let othersServing = false;
    const available: Endpoint[] = [];
    // Panic overrides ejection and failing health checks, not an open breaker: a breaker is the
    // last guard, and when every one is open the call fails fast instead.
    const candidates: Endpoint[] = [];
    let guarded = false;
    for (const endpoint of all) {
      let open = endpoint.state !== "draining";
      let hard = open;
      for (const gate of gates) {
        if (!open && !hard) break;
        if (gate.isAvailable(endpoint)) continue;
        open = false;
        if (!gate.panicOverrides) hard = false;
      }
      if (hard) candidates.push(endpoint);
      else if (endpoint.state !== "draining") guarded = true;
      if (open) {
        available.push(endpoint);
        if (!endpoint.available) (becoming ??= []).push(endpoint);
        else othersServing = true;
      }
      endpoint.available = open;
    }
    if (becoming !== null) {
      const from = othersServing ? now : NO_RAMP;
      for (const endpoint of becoming) endpoint.readySince = from;
    }
    const wasPanic = this.#panic;
    this.#panic = candidates.length > 0 && available.length < this.panicThreshold * candidates.length;
    const ready = this.#panic ? candidates : available;
    this.#guarded = ready.length === 0 && guarded;
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

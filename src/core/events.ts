/**
 * Typed events (cockatiel's `Event<T>`): `client.events.onAttemptEnd(listener)` returns a disposer.
 * Emitters expose `active` so a layer builds an event object only when someone listens — nothing
 * is computed for an event nobody listens to. A listener that throws never breaks a call: its
 * error becomes a process warning.
 *
 * Every event is also published on `node:diagnostics_channel` as `weft:<event>` (undici's habit),
 * so APMs and tools can watch every client of every mesh without touching options. A channel
 * with no subscriber costs one property read per decision.
 */
import diagnostics from "node:diagnostics_channel";
import type { Disposer, MeshResponse } from "./types.js";
import type { Outcome } from "./classifier.js";

export type Listener<T> = (event: T) => void;

export class Emitter<T> {
  #listeners: Listener<T>[] = [];
  readonly #channel: diagnostics.Channel | undefined;

  /** @param channel The `node:diagnostics_channel` name the events are also published on. */
  constructor(channel?: string) {
    this.#channel = channel === undefined ? undefined : diagnostics.channel(channel);
  }

  /** True when at least one listener (or channel subscriber) is there. Check before building an event. */
  get active(): boolean {
    return this.#listeners.length > 0 || this.#channel?.hasSubscribers === true;
  }

  on(listener: Listener<T>): Disposer {
    // Copy-on-write: an emit in progress keeps iterating the list it started with.
    this.#listeners = [...this.#listeners, listener];
    let disposed = false;
    return () => {
      if (disposed) return;
      disposed = true;
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  emit(event: T): void {
    if (this.#channel?.hasSubscribers === true) {
      try {
        this.#channel.publish(event);
      } catch (error) {
        process.emitWarning(`weft: a diagnostics_channel subscriber threw: ${String(error)}`, {
          code: "WEFT_LISTENER_ERROR",
        });
      }
    }
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        process.emitWarning(`weft: an event listener threw: ${String(error)}`, { code: "WEFT_LISTENER_ERROR" });
      }
    }
  }

  clear(): void {
    this.#listeners = [];
  }
}

interface CallInfo {
  readonly service: string;
  readonly method: string;
  readonly path: string;
}

/** The route label of a call, on the events of clients with routes. */
interface RouteInfo {
  /** The route the call took (its name or path pattern: bounded); undefined without routes. */
  readonly route?: string;
}

export interface AttemptStartEvent extends CallInfo, RouteInfo {
  /** Endpoint URL (origin) this attempt goes to. */
  readonly endpoint: string;
  /** 0 for the first attempt. */
  readonly attempt: number;
}

export interface AttemptEndEvent extends AttemptStartEvent {
  readonly status: number | undefined;
  /**
   * The response the attempt got, undefined when it failed without one: read its status and
   * headers (a gRPC attempt's `grpc-status`, a `server-timing`); its body is the caller's.
   */
  readonly response?: MeshResponse;
  readonly error: unknown;
  readonly outcome: Outcome;
  readonly durationMs: number;
}

export interface CallEndEvent extends CallInfo, RouteInfo {
  readonly status: number | undefined;
  readonly error: unknown;
  readonly outcome: Outcome;
  readonly durationMs: number;
  readonly attempts: number;
}

export interface TimeoutEvent extends CallInfo {
  readonly kind: "attempt" | "total";
  readonly timeoutMs: number;
}

export interface EndpointsChangedEvent {
  readonly service: string;
  readonly endpoints: readonly string[];
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

/** Discovery turned stale (its source fails; the last good set keeps serving) or fresh again. */
export interface DiscoveryStateEvent {
  readonly service: string;
  /** The resolver's source, e.g. `dns:SRV _http._tcp.catalog.test` or `etcd:/services/catalog/`. */
  readonly source: string;
  readonly stale: boolean;
  readonly lastError: string | undefined;
  /** Endpoints in the set that keeps serving. */
  readonly endpoints: number;
}

export interface RetryEvent extends CallInfo {
  /** The attempt about to be sent (1 for the first resend). */
  readonly attempt: number;
  /** Why: the status (`"503"`) or error code (`"ECONNREFUSED"`) of the attempt that failed. */
  readonly reason: string;
  /** Backoff (or Retry-After) wait before the resend, ms. */
  readonly delayMs: number;
}

export interface HedgeEvent extends CallInfo {
  /** The attempt number of the hedge. */
  readonly attempt: number;
  /** How long the call had been outstanding when the hedge was sent, ms. */
  readonly afterMs: number;
}

export interface BudgetExhaustedEvent extends CallInfo {
  readonly attempts: number;
  /** What was refused: a retry or a hedge. */
  readonly kind: "retry" | "hedge";
}

export interface BreakerStateEvent {
  readonly service: string;
  readonly endpoint: string;
  readonly from: import("./endpoint.js").BreakerState;
  readonly to: import("./endpoint.js").BreakerState;
}

export interface LimitEvent extends CallInfo {
  /** Which limit turned the call away. */
  readonly kind: "concurrency" | "rate";
  readonly reason: string;
}

export interface EndpointHealthEvent {
  readonly service: string;
  readonly endpoint: string;
  /**
   * `ejected`/`returned`: outlier detection took the endpoint out or let it back;
   * `unhealthy`/`healthy`: active health checks changed their verdict.
   */
  readonly kind: "ejected" | "returned" | "unhealthy" | "healthy";
  /** For `ejected`: the rule that ejected it. */
  readonly reason?: "consecutive" | "successRate";
  /** For `ejected`: how long it stays out, ms. */
  readonly ejectionMs?: number;
}

/** The dynamic config of a client changed state: a version applied or was rejected, or its source failed or recovered. */
export interface ConfigEvent {
  readonly service: string;
  /** The config source, e.g. `etcd:/weft/config/catalog@http://127.0.0.1:2379`. */
  readonly source: string;
  /** The version concerned (`"rev 42"`); for `stale`/`fresh`, the last one read (undefined before the first). */
  readonly version: string | undefined;
  /**
   * `applied`: the version serves from the next call; `rejected`: it failed validation and the last
   * good version keeps serving (`error` says why); `stale` / `fresh`: the source started failing
   * (the version in force keeps serving) or recovered.
   */
  readonly kind: "applied" | "rejected" | "stale" | "fresh";
  readonly error: string | undefined;
}

/**
 * The `node:diagnostics_channel` names weft publishes on; each message is the event object, which
 * carries its `service`.
 * @example diagnostics_channel.subscribe(CHANNELS.retry, (event) => console.log(event));
 */
export const CHANNELS = Object.freeze({
  attemptStart: "weft:attemptStart",
  attemptEnd: "weft:attemptEnd",
  callEnd: "weft:callEnd",
  timeout: "weft:timeout",
  endpointsChanged: "weft:endpointsChanged",
  discoveryState: "weft:discoveryState",
  retry: "weft:retry",
  hedge: "weft:hedge",
  budgetExhausted: "weft:budgetExhausted",
  breakerStateChange: "weft:breakerStateChange",
  limited: "weft:limited",
  endpointHealth: "weft:endpointHealth",
  config: "weft:config",
});

/** The emitters a client owns; layers receive this hub. */
export class ClientEventHub {
  readonly attemptStart = new Emitter<AttemptStartEvent>(CHANNELS.attemptStart);
  readonly attemptEnd = new Emitter<AttemptEndEvent>(CHANNELS.attemptEnd);
  readonly callEnd = new Emitter<CallEndEvent>(CHANNELS.callEnd);
  readonly timeout = new Emitter<TimeoutEvent>(CHANNELS.timeout);
  readonly endpointsChanged = new Emitter<EndpointsChangedEvent>(CHANNELS.endpointsChanged);
  readonly discoveryState = new Emitter<DiscoveryStateEvent>(CHANNELS.discoveryState);
  readonly retry = new Emitter<RetryEvent>(CHANNELS.retry);
  readonly hedge = new Emitter<HedgeEvent>(CHANNELS.hedge);
  readonly budgetExhausted = new Emitter<BudgetExhaustedEvent>(CHANNELS.budgetExhausted);
  readonly breakerStateChange = new Emitter<BreakerStateEvent>(CHANNELS.breakerStateChange);
  readonly limited = new Emitter<LimitEvent>(CHANNELS.limited);
  readonly endpointHealth = new Emitter<EndpointHealthEvent>(CHANNELS.endpointHealth);
  readonly config = new Emitter<ConfigEvent>(CHANNELS.config);

  /** The subscription surface users see as `client.events`. */
  readonly api: ClientEvents = Object.freeze({
    onAttemptStart: (l: Listener<AttemptStartEvent>) => this.attemptStart.on(l),
    onAttemptEnd: (l: Listener<AttemptEndEvent>) => this.attemptEnd.on(l),
    onCallEnd: (l: Listener<CallEndEvent>) => this.callEnd.on(l),
    onTimeout: (l: Listener<TimeoutEvent>) => this.timeout.on(l),
    onEndpointsChanged: (l: Listener<EndpointsChangedEvent>) => this.endpointsChanged.on(l),
    onDiscoveryState: (l: Listener<DiscoveryStateEvent>) => this.discoveryState.on(l),
    onRetry: (l: Listener<RetryEvent>) => this.retry.on(l),
    onHedge: (l: Listener<HedgeEvent>) => this.hedge.on(l),
    onBudgetExhausted: (l: Listener<BudgetExhaustedEvent>) => this.budgetExhausted.on(l),
    onBreakerStateChange: (l: Listener<BreakerStateEvent>) => this.breakerStateChange.on(l),
    onLimited: (l: Listener<LimitEvent>) => this.limited.on(l),
    onEndpointHealth: (l: Listener<EndpointHealthEvent>) => this.endpointHealth.on(l),
    onConfig: (l: Listener<ConfigEvent>) => this.config.on(l),
  });

  /** Every emitter of the hub (each own field that is one), so a new event needs no list kept in step. */
  emitters(): Emitter<never>[] {
    return Object.values(this).filter((value): value is Emitter<never> => value instanceof Emitter);
  }

  clear(): void {
    for (const emitter of this.emitters()) emitter.clear();
  }
}

/** `client.events`: each method subscribes a listener and returns its disposer. */
export interface ClientEvents {
  /** An attempt is about to go to an endpoint. */
  onAttemptStart(listener: Listener<AttemptStartEvent>): Disposer;
  /** An attempt ended, with the classifier's verdict. */
  onAttemptEnd(listener: Listener<AttemptEndEvent>): Disposer;
  /** A call (all its attempts) ended. */
  onCallEnd(listener: Listener<CallEndEvent>): Disposer;
  /** An attempt or a whole call ran out of time. */
  onTimeout(listener: Listener<TimeoutEvent>): Disposer;
  /** Discovery changed the endpoint set. */
  onEndpointsChanged(listener: Listener<EndpointsChangedEvent>): Disposer;
  /** Discovery's source started failing (the last good set keeps serving) or recovered. */
  onDiscoveryState(listener: Listener<DiscoveryStateEvent>): Disposer;
  /** A failed attempt is about to be sent again. */
  onRetry(listener: Listener<RetryEvent>): Disposer;
  /** A hedge (a budgeted early resend) was sent. */
  onHedge(listener: Listener<HedgeEvent>): Disposer;
  /** The retry budget refused a retry or a hedge. */
  onBudgetExhausted(listener: Listener<BudgetExhaustedEvent>): Disposer;
  /** An endpoint's circuit breaker changed state. */
  onBreakerStateChange(listener: Listener<BreakerStateEvent>): Disposer;
  /** A concurrency or rate limit turned a call away. */
  onLimited(listener: Listener<LimitEvent>): Disposer;
  /** Outlier detection ejected or returned an endpoint, or health checks changed their verdict. */
  onEndpointHealth(listener: Listener<EndpointHealthEvent>): Disposer;
  /** The dynamic config applied or rejected a version, or its source failed or recovered. */
  onConfig(listener: Listener<ConfigEvent>): Disposer;
}

/**
 * A client: one service, its policies, its stack. `request()` is the fast path; `fetch()` gives
 * WHATWG semantics over the same stack.
 */
import { Cancellation, linkSignal } from "../core/cancel.js";
import { isIdempotentRequest } from "../core/classifier.js";
import type { Resolver, ResolverSnapshot } from "../core/discovery.js";
import { CallStats, type CallStatsSnapshot } from "../core/call-stats.js";
import {
  EndpointSet,
  type BreakerState,
  type Endpoint,
  type EndpointHealth,
  type EndpointInfo,
} from "../core/endpoint.js";
import { ClientClosedError, TotalTimeoutError } from "../core/errors.js";
import { currentContext, inheritedDeadline } from "../core/context.js";
import { ClientEventHub, type ClientEvents } from "../core/events.js";
import { newRequest } from "../core/request.js";
import { Stack, type StackEntry } from "../core/stack.js";
import type { ConnectionsSnapshot, Transport } from "../core/transport.js";
import type { TlsClientSnapshot } from "../transport/tls.js";
import {
  CallState,
  type CallTimeout,
  type Disposer,
  type HeaderMap,
  type MeshRequest,
  type MeshResponse,
  type Service,
} from "../core/types.js";
import type { ConcurrencySnapshot } from "../limit/concurrency.js";
import type { RateLimitSnapshot } from "../limit/rate-limit.js";
import type { BreakerSnapshot } from "../health/breaker.js";
import type { OutlierSnapshot } from "../health/outlier.js";
import type { HealthCheckProbe, HealthCheckSnapshot } from "../health/health-check.js";
import { encodeBody, type BodyInit, type EncodedBody } from "./body.js";
import { BufferedFetchResponse } from "./fetch-response.js";
import { EMPTY_HEADERS, headerPairs, normalizeHeaders, type HeadersInput } from "./headers.js";
import type { CallCounters } from "./observe.js";
import { CallCounters as Counters } from "./observe.js";
import type { ClientConfig, TimeoutOptions } from "./options.js";
import { STACK_PLAN, type BuildContext, type PlanEntry, type PlanHandle } from "./plan.js";
import { routed, type RoutingSnapshot } from "./routing.js";
import { routedClassifier } from "../core/route.js";
import { checkMs, fail, isPlainObject, checkKeys } from "../core/validate.js";

/** What `client.request()` takes. */
export interface MeshRequestInit {
  /** Default `"GET"`. */
  readonly method?: string;
  /** Path and query, starting with `/`. */
  readonly path: string;
  readonly headers?: HeadersInput;
  readonly body?: BodyInit | null;
  readonly signal?: AbortSignal | null;
  /** Marks a non-idempotent method as safe to resend (as an `Idempotency-Key` header does). */
  readonly idempotent?: boolean;
  /** Per-call timeouts, overriding the client's. */
  readonly timeout?: TimeoutOptions;
}

/** `client.fetch()`'s init: WHATWG `RequestInit` plus weft's per-call options. */
export interface MeshFetchInit extends Omit<RequestInit, "body" | "headers"> {
  readonly body?: BodyInit | null;
  readonly headers?: HeadersInput;
  readonly idempotent?: boolean;
  readonly timeout?: TimeoutOptions;
}

export interface EndpointSnapshot {
  readonly url: string;
  readonly state: EndpointHealth;
  /** Peak-EWMA latency estimate as last updated, ms (null before the first answer). */
  readonly ewmaMs: number | null;
  /**
   * The latency the balancer reads now, ms: the estimate decayed toward the client's median since
   * its last update, and at least the mean age of the attempts in flight.
   */
  readonly latencyMs: number;
  readonly inflight: number;
  readonly requests: number;
  readonly failures: number;
  readonly consecutiveFailures: number;
  readonly breaker: BreakerState;
  /** False while active health checks fail. */
  readonly activeHealthy: boolean;
  /** Times outlier detection ejected it. */
  readonly ejections: number;
  /** While ejected: ms until it returns; otherwise null. */
  readonly ejectedForMs: number | null;
  readonly weight: number;
  /** The weight pickers use now: discovery weight × slow-start ramp. */
  readonly effectiveWeight: number;
  readonly zone: string | null;
  /**
   * Set while the endpoint looks stalled: attempts are in flight to it and their mean age is at
   * least 1 s and 10× its latency estimate (a frozen process, a black-holed route). The balancer
   * already steers away from it; this says so. The mean age, ms; otherwise null.
   */
  readonly stalledForMs: number | null;
  /**
   * The transport's connections to it now (open, requests on them, queued; for HTTP/2 also
   * GOAWAYs, sessions dropped by the keep-alive and the last PING's round trip); null when the
   * transport holds none or does not say (fetch, got, gRPC).
   */
  readonly connections: ConnectionsSnapshot | null;
}

export interface ClientSnapshot {
  readonly service: string;
  readonly balancer: string;
  readonly transport: string;
  /** TLS origination (expected identity, handshake failures, certificate version and expiry); null without `tls`. */
  readonly tls: TlsClientSnapshot | null;
  readonly closed: boolean;
  readonly endpoints: readonly EndpointSnapshot[];
  readonly counters: Readonly<CallCounters>;
  /** Retry tokens available now (null when there is no budget). */
  readonly retryBudget: number | null;
  readonly limits: { readonly concurrency: ConcurrencySnapshot | null; readonly rateLimit: RateLimitSnapshot | null };
  /** True while fewer than the panic threshold of endpoints are available and all are used. */
  readonly panic: boolean;
  readonly outlier: OutlierSnapshot | null;
  readonly healthCheck: HealthCheckSnapshot | null;
  /** The per-endpoint breakers (tracked, open, half-open, each one's window); null when breakers are off. */
  readonly breaker: BreakerSnapshot | null;
  /** Routes: the version in force and where it came from, the dynamic config's state, each route's counts; null without routes. */
  readonly routing: RoutingSnapshot | null;
  readonly discovery: ResolverSnapshot;
  /** Rates, success % and latency percentiles over the last 10 s, and one point per second for the last 5 minutes. */
  readonly stats: CallStatsSnapshot;
}

/** What the mesh lends a client: shared transport and resolver. */
export interface ClientParts {
  readonly transport: Transport;
  readonly resolver: Pick<Resolver, "subscribe" | "snapshot" | "onState">;
  readonly onClose: (client: Client) => Promise<void>;
  /**
   * Connection pools are per origin and shared by every client of the mesh: the client holds an
   * origin for each endpoint that uses it, and the pool is released only when no endpoint of any
   * client holds it any more.
   */
  readonly origins: { hold(origin: string): void; release(origin: string): void };
  readonly warn: (message: string) => void;
  /** The mesh's other clients by service name (a route's service backend); absent outside a mesh. */
  readonly peer?: (service: string) => Client | undefined;
}

export class Client {
  readonly service: string;
  readonly config: ClientConfig;
  /** The layers in request order, as built (after `options.stack` edits). */
  readonly stack: Stack;
  readonly #events = new ClientEventHub();
  readonly #endpoints = new EndpointSet();
  readonly #counters = new Counters();
  readonly #stats = new CallStats();
  readonly #parts: ClientParts;
  readonly #service: Service;
  readonly #terminal: Service;
  /** Parts of the stack built on demand (a mirror's path from `balance` down), by role. */
  readonly #below = new Map<string, Service>();
  /** Where another client of the mesh hands a call its route sends here: the top of this stack, routed already. */
  readonly #entry: Service = (req) => {
    if (this.#closed) return Promise.reject(new ClientClosedError(this.service));
    return this.#service({ ...req, service: this.service, attempt: 0, endpoint: null });
  };
  /** What each entry of the plan built, in plan order (entries that are off are absent). */
  readonly #built: readonly BuiltEntry[];
  readonly #unsubscribe: Disposer;
  readonly #unwatchDiscovery: Disposer;
  /** Settles with discovery's first answer; null once it has answered. */
  #firstAnswer: Promise<void> | null = null;
  #answered: ((closed?: Error) => void) | null = null;
  #closed = false;
  #closing: Promise<void> | undefined;

  /**
   * Made by `Mesh.client()` / `createClient()`, which normalise the options and share the
   * transport and discovery between clients; not for users (its parameters are internal types).
   * @internal
   */
  constructor(config: ClientConfig, parts: ClientParts, plan: readonly PlanEntry[] = STACK_PLAN) {
    this.service = config.service;
    this.config = config;
    this.#parts = parts;
    const { clock, random, service } = config;
    // With routes, a call's route may bring its own classifier (one property read per verdict).
    const classifier = routed(config) ? routedClassifier(config.classifier) : config.classifier;
    const endpoints = this.#endpoints;
    const built: BuiltEntry[] = [];
    const context: BuildContext = {
      config,
      service,
      clock,
      random,
      classifier,
      events: this.#events,
      endpoints,
      transport: parts.transport,
      counters: this.#counters,
      stats: this.#stats,
      firstAnswer: () => this.#firstAnswer,
      changed: () => endpoints.refresh(clock.now()),
      probe: (endpoint, probe) => this.#probe(endpoint, probe),
      snapshot: () => this.snapshot(),
      built: (role) => built.find((b) => b.entry.role === role)?.handle,
      peer: (name) => {
        const other = parts.peer?.(name);
        return other === undefined ? undefined : other.#entry;
      },
      stackFrom: (role) => this.#stackFrom(role),
      warn: parts.warn,
    };
    // The plan, in request order: each entry builds its layers and parts; see plan.ts for why
    // each sits where it does.
    const entries: StackEntry[] = [];
    let stack: Stack;
    try {
      for (const entry of plan) {
        const handle = entry.build(context);
        if (handle === null) continue;
        built.push({ entry, handle });
        for (const layer of handle.layers ?? []) entries.push({ role: entry.role, layer });
        if (handle.gate !== undefined) endpoints.addGate(handle.gate);
      }
      stack = new Stack(entries);
      if (config.stack !== undefined) {
        const edited = config.stack(stack);
        if (!(edited instanceof Stack))
          fail(
            "stack",
            edited,
            "the stack function to return a Stack (use stack.insertAfter/insertBefore/replace/remove)",
          );
        stack = edited;
      }
    } catch (error) {
      // What was built already runs (timers, watches, meters): stop it, innermost first.
      for (let i = built.length - 1; i >= 0; i--) {
        const closing = (built[i] as BuiltEntry).handle.close?.();
        if (closing !== undefined) void Promise.resolve(closing).catch(() => {});
      }
      throw error;
    }
    this.#built = built;
    this.stack = stack;
    const transport = parts.transport;
    this.#terminal = (req) => transport.send(req);
    this.#service = stack.build(this.#terminal);

    const firstAnswer = new Promise<void>((resolve, reject) => {
      this.#answered = (closed) => (closed === undefined ? resolve() : reject(closed));
    });
    // Rejected only when the client closes first; calls waiting on it take the rejection.
    firstAnswer.catch(() => {});
    this.#firstAnswer = firstAnswer;
    this.#unwatchDiscovery = parts.resolver.onState?.((state) => this.#onDiscoveryState(state)) ?? (() => {});
    this.#unsubscribe = parts.resolver.subscribe((infos) => this.#onEndpoints(infos));
    // A source that answers synchronously (static) or has answered for another client already.
    const state = parts.resolver.snapshot();
    if (state.updatedAt !== undefined || state.lastError !== undefined) this.#settleFirstAnswer();
  }

  /** Typed events; each `onX(listener)` returns a disposer. */
  get events(): ClientEvents {
    return this.#events.api;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The fast path: returns the response as soon as its headers arrive; read the body with
   * `text()`, `json()`, `arrayBuffer()` or the `body` stream. An HTTP error status is a response,
   * not a throw.
   * @example const r = await client.request({ path: "/v1/items/42" }); const item = await r.json();
   */
  request(init: MeshRequestInit): Promise<MeshResponse> {
    return this.#dispatch(init, new CallState());
  }

  #dispatch(init: MeshRequestInit, call: CallState): Promise<MeshResponse> {
    if (this.#closed) return Promise.reject(new ClientClosedError(this.service));
    if (typeof init !== "object" || init === null)
      return Promise.reject(new TypeError("request: expected { method?, path, headers?, body?, signal? }"));
    let encoded: EncodedBody | Promise<EncodedBody>;
    try {
      encoded = encodeBody(init.body);
    } catch (error) {
      return Promise.reject(error);
    }
    if (encoded instanceof Promise) return encoded.then((e) => this.#send(init, e, call));
    return this.#send(init, encoded, call);
  }

  /**
   * WHATWG fetch over the mesh: `input` is a path (`"/v1/items"`), a URL (its path and query are
   * used; the origin comes from discovery) or a `Request`. Resolves with a real `Response` whose
   * body streams.
   * @example const res = await client.fetch("/v1/items/42", { signal }); await res.json();
   */
  async fetch(input: string | URL | Request, init: MeshFetchInit = {}): Promise<Response> {
    let method = init.method;
    let headers: HeadersInput | undefined = init.headers;
    let body: BodyInit | null | undefined = init.body;
    let signal = init.signal;
    let path: string;
    if (input instanceof Request) {
      path = pathOf(new URL(input.url));
      method ??= input.method;
      headers ??= input.headers;
      // A Request's body is read once here so that it can be sent again on a retry.
      if (body === undefined && input.body !== null) body = new Uint8Array(await input.arrayBuffer());
      signal ??= input.signal;
    } else if (input instanceof URL) path = pathOf(input);
    else if (typeof input === "string") path = input.startsWith("/") ? input : pathOf(parseUrl(input));
    else throw new TypeError(`fetch: input must be a path, a URL or a Request, got ${typeof input}`);
    const call = new CallState();
    const res = await this.#dispatch(
      { method, path, headers, body, signal, idempotent: init.idempotent, timeout: init.timeout },
      call,
    );
    return toResponse(res, call.lastEndpoint === "" ? "" : call.lastEndpoint + path);
  }

  /** Plain JSON: endpoints (url, state, EWMA, in-flight, what each policy says of it), counters, each policy's section. */
  snapshot(): ClientSnapshot {
    const now = this.config.clock.now();
    const built = this.#built;
    const transport = this.#parts.transport;
    const snapshot: Record<string, unknown> = {
      service: this.service,
      balancer: this.config.balancer.name,
      transport: this.#parts.transport.name,
      tls: this.#parts.transport.tlsSnapshot?.() ?? null,
      closed: this.#closed,
      endpoints: this.#endpoints.all.map((e) => {
        const row: Record<string, unknown> = {
          url: e.url,
          state: e.state,
          ewmaMs: Number.isNaN(e.ewmaMs) ? null : round(e.ewmaMs),
          latencyMs: Number.isNaN(e.ewmaMs) ? 0 : round(e.ewmaMs),
          inflight: e.inflight,
          requests: e.requests,
          failures: e.failures,
          consecutiveFailures: e.consecutiveFailures,
          breaker: "closed",
          activeHealthy: true,
          ejections: 0,
          ejectedForMs: null,
          weight: e.weight,
          effectiveWeight: e.weight,
          zone: e.zone ?? null,
          stalledForMs: stalledFor(e, now),
          connections: transport.connections?.(e.origin) ?? null,
        };
        for (const { handle } of built) if (handle.describe !== undefined) Object.assign(row, handle.describe(e, now));
        return row as unknown as EndpointSnapshot;
      }),
      counters: { ...this.#counters },
      retryBudget: null,
      limits: { concurrency: null, rateLimit: null },
      panic: this.#endpoints.panic,
      outlier: null,
      healthCheck: null,
      breaker: null,
      routing: null,
      discovery: this.#parts.resolver.snapshot(),
      stats: this.#stats.snapshot(now, this.config.clock.wallNow()),
    };
    for (const { entry, handle } of built) {
      if (entry.snapshotKey === undefined || handle.snapshot === undefined) continue;
      const [key, inner] = entry.snapshotKey.split(".") as [string, string | undefined];
      if (inner === undefined) snapshot[key] = handle.snapshot(now);
      else snapshot[key] = { ...(snapshot[key] as object | undefined), [inner]: handle.snapshot(now) };
    }
    return snapshot as unknown as ClientSnapshot;
  }

  /** Stops new calls, lets in-flight ones finish, and releases what the client holds. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    this.#unsubscribe();
    this.#unwatchDiscovery();
    // Calls still waiting for discovery's first answer fail as closed, not as "no endpoints".
    this.#settleFirstAnswer(new ClientClosedError(this.service));
    // Inner parts first: the reverse of the order they were built in.
    for (let i = this.#built.length - 1; i >= 0; i--) await (this.#built[i] as BuiltEntry).handle.close?.();
    // Give back this client's hold on the shared pools (another client may still use them).
    for (const endpoint of this.#endpoints.all) this.#parts.origins.release(endpoint.origin);
    await this.#parts.onClose(this);
    this.#events.clear();
  }

  #send(init: MeshRequestInit, encoded: EncodedBody, call: CallState): Promise<MeshResponse> {
    const {
      method: methodInit,
      path,
      headers: headersInit,
      signal,
      idempotent: idempotentInit,
      timeout: timeoutInit,
    } = init;
    if (typeof path !== "string" || path.charCodeAt(0) !== 47 /* "/" */) {
      return Promise.reject(
        new TypeError(`request: path must be a string starting with "/", got ${JSON.stringify(path)}`),
      );
    }
    const method = methodInit === undefined ? "GET" : methodInit.toUpperCase();
    let headers: HeaderMap = headersInit === undefined ? EMPTY_HEADERS : normalizeHeaders(headersInit);
    if (encoded.contentType !== undefined && headers["content-type"] === undefined) {
      headers = { ...headers, "content-type": encoded.contentType };
    }
    let timeout: CallTimeout | null = null;
    if (timeoutInit !== undefined) {
      try {
        timeout = checkCallTimeout(timeoutInit);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    // A call made while serving a request (weft/server, runWithContext) inherits that request's
    // deadline and is cancelled with it: a child of its cancellation, released when the call ends.
    const context = currentContext();
    let cancel: Cancellation;
    let deadline = Infinity;
    if (context === undefined) cancel = new Cancellation();
    else {
      cancel = context.cancel.child();
      deadline = inheritedDeadline(context, this.config.clock);
      if (!cancel.aborted && deadline <= this.config.clock.now()) {
        cancel.release();
        return Promise.reject(
          new TotalTimeoutError(0, {
            message: `the deadline this call inherits from the request being served has passed: no call to "${this.service}" was made`,
          }),
        );
      }
    }
    const unlinkSignal = signal === undefined || signal === null ? null : linkSignal(signal, cancel);
    if (idempotentInit !== undefined) call.idempotentGiven = true;
    const unlink =
      context === undefined
        ? unlinkSignal
        : unlinkSignal === null
          ? () => cancel.release()
          : () => (cancel.release(), unlinkSignal());
    // An already-aborted signal (or context) ends the call before it starts, as fetch does.
    if (cancel.aborted) {
      unlink?.();
      return Promise.reject(cancel.reason);
    }
    const req: MeshRequest = {
      method,
      path,
      headers,
      body: encoded.body,
      idempotent: idempotentInit ?? isIdempotentRequest(method, headers),
      cancel,
      deadline,
      attempt: 0,
      endpoint: null,
      service: this.service,
      attrs: NO_ATTRS,
      timeout,
      call,
    };
    const pending = this.#service(req);
    if (unlink === null) return pending;
    // The caller's signal (and the context) governs the body too (fetch semantics): unlink when the body ends.
    return pending.then(
      (res) => {
        if (res.onBodyEnd !== undefined) res.onBodyEnd(unlink);
        else unlink();
        return res;
      },
      (error: unknown) => {
        unlink();
        throw error;
      },
    );
  }

  #stackFrom(role: string): Service {
    let service = this.#below.get(role);
    if (service === undefined) {
      const at = this.stack.entries.findIndex((e) => e.role === role);
      // Built a second time from `role` down: layers keep their state in their factory, so both
      // chains share it (the same breakers, load estimates and pickers).
      service = at === -1 ? this.#service : new Stack(this.stack.entries.slice(at)).build(this.#terminal);
      this.#below.set(role, service);
    }
    return service;
  }

  /** One health check: straight to the transport, outside the stack (no retries, breakers or counters). */
  async #probe(endpoint: Endpoint, probe: HealthCheckProbe): Promise<number> {
    const res = await this.#parts.transport.send(
      newRequest({ method: probe.method, path: probe.path, cancel: probe.cancel, endpoint, service: this.service }),
    );
    await res.dump();
    return res.status;
  }

  #settleFirstAnswer(closed?: Error): void {
    // Closed before any answer: keep the (now rejected) promise, so calls that reach the balance
    // layer later fail as closed too.
    if (closed === undefined || this.#answered === null) this.#firstAnswer = null;
    const answered = this.#answered;
    this.#answered = null;
    answered?.(closed);
  }

  #onDiscoveryState(state: ResolverSnapshot): void {
    // A failing source answers too: calls waiting for endpoints fail instead of waiting on.
    if (state.lastError !== undefined) this.#settleFirstAnswer();
    if (this.#events.discoveryState.active) {
      this.#events.discoveryState.emit({
        service: this.service,
        source: state.source,
        stale: state.stale,
        lastError: state.lastError,
        endpoints: state.endpoints.length,
      });
    }
  }

  #onEndpoints(infos: readonly EndpointInfo[]): void {
    this.#settleFirstAnswer();
    const now = this.config.clock.now();
    // The set ramps endpoints that join while others serve (slow start); the first set does not.
    const { added, removed } = this.#endpoints.update(infos, now);
    if (added.length === 0 && removed.length === 0) return;
    const all = this.#endpoints.all;
    for (const { handle } of this.#built) handle.setEndpoints?.(all, added, removed);
    // A removed endpoint drains: no new picks; the transport closes its pool gracefully, so
    // attempts in flight there finish.
    for (const endpoint of added) this.#parts.origins.hold(endpoint.origin);
    for (const endpoint of removed) this.#parts.origins.release(endpoint.origin);
    if (this.#events.endpointsChanged.active) {
      this.#events.endpointsChanged.emit({
        service: this.service,
        endpoints: all.map((e) => e.url),
        added: added.map((e) => e.url),
        removed: removed.map((e) => e.url),
      });
    }
  }
}

/** One plan entry and what it built. */
interface BuiltEntry {
  readonly entry: PlanEntry;
  readonly handle: PlanHandle;
}

const NO_ATTRS = Object.freeze({});

function checkCallTimeout(timeout: unknown): CallTimeout {
  if (!isPlainObject(timeout)) fail("timeout", timeout, "{ attemptMs?, totalMs? }");
  checkKeys(timeout, ["attemptMs", "totalMs"], "timeout");
  const attemptMs = checkMs("timeout.attemptMs", timeout.attemptMs, true);
  const totalMs = checkMs("timeout.totalMs", timeout.totalMs, true);
  return { attemptMs, totalMs };
}

function parseUrl(input: string): URL {
  try {
    return new URL(input);
  } catch {
    throw new TypeError(`fetch: "${input}" is neither a path starting with "/" nor an absolute URL`);
  }
}

function pathOf(url: URL): string {
  return url.pathname + url.search;
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/** A WHATWG `Response` over a mesh response; the body streams through without copying. */
function toResponse(res: MeshResponse, url: string): Response {
  // A body that has already arrived (most small ones) is served from memory, with no stream
  // unless `body` is read (fetch-response.ts); a body still arriving streams through.
  const bytes = res.takeBody?.() ?? null;
  const init = { status: res.status, headers: headerPairs(res.headers) };
  const response = bytes === null ? new Response(res.body, init) : new BufferedFetchResponse(bytes, init);
  if (url !== "") Object.defineProperty(response, "url", { value: url });
  return response;
}

/** An endpoint stalls when its attempts in flight are, on average, this old at least… */
const STALL_MIN_MS = 1000;
/** …and this many times its latency estimate. */
const STALL_FACTOR = 10;

/** The mean age of the attempts in flight to `e` when it looks stalled, ms; otherwise null. */
function stalledFor(e: Endpoint, now: number): number | null {
  if (e.inflight === 0) return null;
  const age = e.pendingAgeMs(now);
  const ewma = Number.isNaN(e.ewmaMs) ? 0 : e.ewmaMs;
  return age >= STALL_MIN_MS && age >= STALL_FACTOR * ewma ? Math.round(age) : null;
}

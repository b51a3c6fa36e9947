/**
 * A client: one service, its policies, its stack. `request()` is the fast path; `fetch()` gives
 * WHATWG semantics over the same stack.
 */
import { balanceLayer } from "../balance/layer.js";
import { LoadTracker, DEFAULT_LOAD_OPTIONS } from "../balance/load.js";
import type { Picker } from "../balance/picker.js";
import { Cancellation, linkSignal } from "../core/cancel.js";
import { isIdempotentRequest } from "../core/classifier.js";
import { attemptLayer } from "../core/attempt.js";
import { deadlineLayer } from "../core/deadline.js";
import type { Resolver, ResolverSnapshot } from "../core/discovery.js";
import { CallStats, type CallStatsSnapshot } from "../core/call-stats.js";
import { EndpointSet, type BreakerState, type EndpointHealth } from "../core/endpoint.js";
import { ClientClosedError, TotalTimeoutError } from "../core/errors.js";
import { currentContext, inheritedDeadline } from "../core/context.js";
import { ClientEventHub, type ClientEvents } from "../core/events.js";
import { newRequest } from "../core/request.js";
import { Stack, middlewareLayer } from "../core/stack.js";
import type { Transport } from "../core/transport.js";
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
import { attemptSpanLayer } from "../telemetry/attempt-span.js";
import { callSpanLayer } from "../telemetry/call-span.js";
import { clientMetrics } from "../telemetry/metrics.js";
import { RetryBudget } from "../retry/budget.js";
import { LatencyWindow } from "../core/latency.js";
import { retryLayer } from "../retry/layer.js";
import { fallbackLayer } from "../limit/fallback.js";
import { coalesceLayer } from "../limit/coalesce.js";
import { concurrencyLayer, type ConcurrencyLimiter, type ConcurrencySnapshot } from "../limit/concurrency.js";
import { rateLimitLayer, type RateLimiter, type RateLimitSnapshot } from "../limit/rate-limit.js";
import { breakerLayer, type BreakerLayer } from "../health/breaker.js";
import { OutlierDetector, type OutlierSnapshot } from "../health/outlier.js";
import { HealthChecker, type HealthCheckProbe, type HealthCheckSnapshot } from "../health/health-check.js";
import { rampStart, slowStartWeigher } from "../health/slow-start.js";
import type { Endpoint } from "../core/endpoint.js";
import { encodeBody, type BodyInit, type EncodedBody } from "./body.js";
import { EMPTY_HEADERS, headerPairs, normalizeHeaders, type HeadersInput } from "./headers.js";
import { CallCounters, observeLayer } from "./observe.js";
import type { ClientConfig, TimeoutOptions } from "./options.js";
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
}

export class Client {
  readonly service: string;
  readonly config: ClientConfig;
  /** The layers in request order, as built (after `options.stack` edits). */
  readonly stack: Stack;
  readonly #events = new ClientEventHub();
  readonly #endpoints = new EndpointSet();
  readonly #counters = new CallCounters();
  readonly #stats = new CallStats();
  readonly #parts: ClientParts;
  readonly #service: Service;
  readonly #budget: RetryBudget | null;
  readonly #concurrency: ConcurrencyLimiter | null;
  readonly #breakers: BreakerLayer | null;
  readonly #outlier: OutlierDetector | null;
  readonly #healthCheck: HealthChecker | null;
  readonly #weightOf: (endpoint: Endpoint, nowMs: number) => number;
  readonly #load: LoadTracker;
  readonly #rateLimit: RateLimiter | null;
  readonly #latency = new LatencyWindow();
  readonly #unsubscribe: Disposer;
  readonly #unwatchDiscovery: Disposer;
  /** Stops the OpenTelemetry metrics (null when off or no meter provider is registered). */
  readonly #stopMetrics: Disposer | null;
  /** Settles with discovery's first answer; null once it has answered. */
  #firstAnswer: Promise<void> | null = null;
  #answered: ((closed?: Error) => void) | null = null;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(config: ClientConfig, parts: ClientParts) {
    this.service = config.service;
    this.config = config;
    this.#parts = parts;
    const { clock, random, classifier, service } = config;
    const events = this.#events;
    this.#breakers =
      config.breaker === false
        ? null
        : breakerLayer({
            service,
            config: config.breaker,
            classifier,
            clock,
            onStateChange: (endpoint, from, to) => {
              endpoint.breaker = to;
              this.#endpoints.refresh();
              if (events.breakerStateChange.active)
                events.breakerStateChange.emit({ service, endpoint: endpoint.url, from, to });
            },
          });
    this.#concurrency =
      config.concurrency === false
        ? null
        : concurrencyLayer({ service, config: config.concurrency, clock, classifier, events });
    this.#rateLimit =
      config.rateLimit === false ? null : rateLimitLayer({ service, config: config.rateLimit, clock, events });
    this.#budget =
      config.budget === false || (config.retry === false && config.hedge === false)
        ? null
        : new RetryBudget(config.budget);
    const load = (this.#load = new LoadTracker({
      ...DEFAULT_LOAD_OPTIONS,
      decayMs: config.balancer.decayMs ?? DEFAULT_LOAD_OPTIONS.decayMs,
    }));
    this.#endpoints.panicThreshold = config.panicThreshold;
    // An endpoint's weight now: its discovery weight times its slow-start ramp.
    this.#weightOf = slowStartWeigher(config.slowStart);
    const picker: Picker = config.balancer.create({ clock, random, load, weightOf: this.#weightOf });
    const healthEvent = (
      endpoint: Endpoint,
      kind: "ejected" | "returned" | "unhealthy" | "healthy",
      reason?: "consecutive" | "successRate",
      untilMs?: number,
    ): void => {
      this.#endpoints.refresh();
      if (events.endpointHealth.active) {
        events.endpointHealth.emit({
          service,
          endpoint: endpoint.url,
          kind,
          reason,
          ejectionMs: untilMs === undefined ? undefined : untilMs - clock.now(),
        });
      }
    };
    this.#outlier =
      config.outlier === false
        ? null
        : new OutlierDetector(config.outlier, clock, {
            onEject: (endpoint, reason, untilMs) => healthEvent(endpoint, "ejected", reason, untilMs),
            onReturn: (endpoint) => healthEvent(endpoint, "returned"),
          });
    this.#healthCheck =
      config.healthCheck === false
        ? null
        : new HealthChecker(config.healthCheck, {
            clock,
            random,
            send: (endpoint, probe) => this.#probe(endpoint, probe),
            onChange: (endpoint, healthy) => {
              // A passing check also ends an outlier ejection (Envoy's default).
              if (healthy) this.#outlier?.uneject(endpoint);
              healthEvent(endpoint, healthy ? "healthy" : "unhealthy");
            },
          });
    const outlier = this.#outlier;

    // The default stack, in request order (first = outermost). Each entry says why it sits there.
    let stack = new Stack([
      // Outermost: the fallback answers only once everything below has given up, and the
      // counters below it still see the real outcome.
      ...(config.fallback !== undefined ? [{ role: "fallback", layer: fallbackLayer(config.fallback) }] : []),
      // Counts and reports each call exactly as the caller sees it.
      { role: "observe", layer: observeLayer(service, this.#counters, this.#stats, classifier, clock, events) },
      // The logical span covers the deadline and every attempt, so attempt spans are its children.
      ...(config.tracing ? [{ role: "trace", layer: callSpanLayer() }] : []),
      // Coalescing sits above the deadline and the limits: a GET that joins one in flight takes
      // no slot, no token and no attempt of its own.
      ...(config.coalesce !== false
        ? [{ role: "coalesce", layer: coalesceLayer(config.coalesce === true ? undefined : config.coalesce) }]
        : []),
      // The total deadline sits above balance (and, later, retry and queueing) so it bounds all of them.
      { role: "deadline", layer: deadlineLayer({ clock, events, totalMs: config.totalMs }) },
      // The rate limit below the deadline (a token wait ends at it), above concurrency (a call
      // waiting for a token holds no slot) and above retry (it counts calls; the budget bounds retries).
      ...(this.#rateLimit !== null ? [{ role: "rate-limit", layer: this.#rateLimit.layer }] : []),
      // The bulkhead below the deadline (queueing ends at it) and above retry and balance, so a
      // call holds one slot across all its attempts.
      ...(this.#concurrency !== null ? [{ role: "concurrency", layer: this.#concurrency.layer }] : []),
      // Retry and hedging below the deadline (no wait outlives it) and above balance (each resend
      // picks again, preferring an endpoint the call has not tried).
      ...(config.retry !== false || config.hedge !== false
        ? [
            {
              role: "retry",
              layer: retryLayer({
                service,
                retry: config.retry,
                hedge: config.hedge,
                budget: this.#budget,
                latency: this.#latency,
                classifier,
                clock,
                random,
                events,
              }),
            },
          ]
        : []),
      // Balance picks per attempt: below the call-level layers so a resend can pick another endpoint.
      {
        role: "balance",
        layer: balanceLayer({
          service,
          endpoints: this.#endpoints,
          picker,
          load,
          clock,
          classifier,
          events,
          observeOutcome: outlier === null ? undefined : (endpoint, outcome) => outlier.observe(endpoint, outcome),
          zoneAware: config.zoneAware,
          firstAnswer: () => this.#firstAnswer,
        }),
      },
      // One breaker per endpoint: below balance (it needs the endpoint picked) and above attempt,
      // so a per-try timeout counts as a failure of that endpoint.
      ...(this.#breakers !== null ? [{ role: "breaker", layer: this.#breakers.layer }] : []),
      // User middleware runs once per attempt and sees the endpoint picked for it.
      ...config.use.map((m) => ({ role: "use", layer: middlewareLayer(m) })),
      // Per-try timeout: below balance so a timed-out attempt counts against its endpoint's load.
      {
        role: "attempt",
        layer: attemptLayer({ clock, events, attemptMs: config.attemptMs, header: config.deadlineHeader }),
      },
      // Innermost: the attempt span measures wire time only, and its traceparent is injected last
      // so no middleware can overwrite it.
      ...(config.tracing
        ? [{ role: "attempt-trace", layer: attemptSpanLayer(() => parts.transport.instrumented?.() === true) }]
        : []),
    ]);
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
    this.stack = stack;
    const transport = parts.transport;
    this.#service = stack.build((req) => transport.send(req));

    const firstAnswer = new Promise<void>((resolve, reject) => {
      this.#answered = (closed) => (closed === undefined ? resolve() : reject(closed));
    });
    // Rejected only when the client closes first; calls waiting on it take the rejection.
    firstAnswer.catch(() => {});
    this.#firstAnswer = firstAnswer;
    // Metrics subscribe to events only when a real meter provider is there: none, no work.
    this.#stopMetrics =
      config.metrics === false
        ? null
        : clientMetrics({
            service,
            events: this.#events.api,
            snapshot: () => this.snapshot(),
            meterProvider: config.metrics.meterProvider,
          });
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

  /** Plain JSON: endpoints (url, state, EWMA, in-flight) and counters. */
  snapshot(): ClientSnapshot {
    const now = this.config.clock.now();
    return {
      service: this.service,
      balancer: this.config.balancer.name,
      transport: this.#parts.transport.name,
      tls: (this.#parts.transport.tlsSnapshot?.() as TlsClientSnapshot | undefined) ?? null,
      closed: this.#closed,
      endpoints: this.#endpoints.all.map((e) => ({
        url: e.url,
        state: e.state,
        ewmaMs: Number.isNaN(e.ewmaMs) ? null : round(e.ewmaMs),
        latencyMs: round(this.#load.latencyMs(e, now)),
        inflight: e.inflight,
        requests: e.requests,
        failures: e.failures,
        consecutiveFailures: e.consecutiveFailures,
        breaker: e.breaker,
        activeHealthy: e.activeHealthy,
        ejections: e.ejections,
        ejectedForMs: e.state === "ejected" ? Math.max(0, round(e.ejectedUntil - now)) : null,
        weight: e.weight,
        effectiveWeight: round(this.#weightOf(e, now)),
        zone: e.zone ?? null,
        stalledForMs: stalledFor(e, now),
      })),
      counters: { ...this.#counters },
      retryBudget: this.#budget === null ? null : round(this.#budget.balance(this.config.clock.now())),
      limits: { concurrency: this.#concurrency?.snapshot() ?? null, rateLimit: this.#rateLimit?.snapshot() ?? null },
      panic: this.#endpoints.panic,
      outlier: this.#outlier?.snapshot() ?? null,
      healthCheck: this.#healthCheck?.snapshot() ?? null,
      discovery: this.#parts.resolver.snapshot(),
      stats: this.#stats.snapshot(now, this.config.clock.wallNow()),
    };
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
    this.#breakers?.close();
    this.#outlier?.close();
    this.#healthCheck?.close();
    // Give back this client's hold on the shared pools (another client may still use them).
    for (const endpoint of this.#endpoints.all) this.#parts.origins.release(endpoint.origin);
    await this.#parts.onClose(this);
    this.#stopMetrics?.();
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

  #onEndpoints(infos: readonly import("../core/endpoint.js").EndpointInfo[]): void {
    this.#settleFirstAnswer();
    const now = this.config.clock.now();
    const { added, removed } = this.#endpoints.update(infos, now);
    if (added.length === 0 && removed.length === 0) return;
    // Endpoints that join while others serve ramp up (slow start); the first set does not.
    const from = rampStart(now, added, this.#endpoints.all);
    for (const endpoint of added) endpoint.readySince = from;
    this.#outlier?.setEndpoints(this.#endpoints.all);
    this.#healthCheck?.setEndpoints(this.#endpoints.all);
    // A removed endpoint drains: no new picks; the transport closes its pool gracefully, so
    // attempts in flight there finish.
    for (const endpoint of removed) this.#breakers?.forget(endpoint);
    for (const endpoint of added) this.#parts.origins.hold(endpoint.origin);
    for (const endpoint of removed) this.#parts.origins.release(endpoint.origin);
    if (this.#events.endpointsChanged.active) {
      this.#events.endpointsChanged.emit({
        service: this.service,
        endpoints: this.#endpoints.all.map((e) => e.url),
        added: added.map((e) => e.url),
        removed: removed.map((e) => e.url),
      });
    }
  }
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
  // A body that has already arrived (most small ones) goes in as bytes: a Response reads those
  // without the stream machinery.
  const bytes = res.takeBody?.() ?? null;
  const response = new Response(bytes ?? res.body, { status: res.status, headers: headerPairs(res.headers) });
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

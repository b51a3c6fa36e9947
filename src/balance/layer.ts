/**
 * The balance layer: picks an endpoint for each attempt from the discovery set and accounts for
 * the load it puts there (in-flight, peak-EWMA latency, failures as the classifier sees them).
 * It sits below retry so that every resend picks again, and above the per-attempt layers so the
 * attempt timeout and span know their endpoint.
 */
import type { Classifier } from "../core/classifier.js";
import { isFailure, type Outcome } from "../core/classifier.js";
import type { Clock } from "../core/clock.js";
import type { Endpoint, EndpointSet } from "../core/endpoint.js";
import { BreakerOpenError, ErrorCodes, NoEndpointsError } from "../core/errors.js";
import type { ClientEventHub } from "../core/events.js";
import type { EndpointSubset } from "../core/route.js";
import type { Layer, MeshRequest, MeshResponse, Service } from "../core/types.js";
import type { LoadTracker } from "./load.js";
import type { Picker } from "./picker.js";
import { Subsets } from "./subset.js";
import { zoneCandidates, type ZoneAwareConfig } from "./zone.js";

export interface BalanceLayerContext {
  readonly service: string;
  readonly endpoints: EndpointSet;
  readonly picker: Picker;
  readonly load: LoadTracker;
  readonly clock: Clock;
  readonly classifier: Classifier;
  readonly events: ClientEventHub;
  /**
   * Receives every classified attempt outcome (outlier detection listens here); returns the
   * endpoint's ejection count when this outcome ejected it, else 0.
   */
  readonly observeOutcome?: (endpoint: Endpoint, outcome: Outcome) => number;
  /** Locality-aware routing: prefer the caller's zone, spill over when it is unhealthy or saturated. */
  readonly zoneAware?: ZoneAwareConfig;
  /**
   * While discovery has not answered yet (a DNS query or an etcd list in flight), a promise that
   * settles with its first answer; null once it has answered (with endpoints or an error).
   */
  readonly firstAnswer?: () => Promise<void> | null;
  /** Makes a picker for a route's endpoint subset (each subset has its own); absent: subsets pick with `picker`. */
  readonly createPicker?: () => Picker;
}

/**
 * Why nothing can be picked: every endpoint's breaker is open (fail fast, do not queue), or there
 * are no endpoints at all (or none that is not ejected or draining).
 */
function noneReady(service: string, endpoints: EndpointSet, attempts: number): Error {
  if (endpoints.guardedOut) return new BreakerOpenError(service, { attempts });
  return new NoEndpointsError(service, { attempts });
}

/** A route's subset has no ready endpoint: say which subset, and how many endpoints it has at all. */
function noneInSubset(service: string, subset: EndpointSubset, members: number, attempts: number): Error {
  return new NoEndpointsError(service, {
    attempts,
    message: `no ready endpoint of "${service}" in the subset ${subset.key} (${members} endpoint(s) carry that metadata)`,
  });
}

/** `ready` without the endpoints already tried, or all of `ready` when every one was tried. */
function untried(ready: readonly Endpoint[], tried: readonly string[]): readonly Endpoint[] {
  const fresh = ready.filter((e) => !tried.includes(e.url));
  return fresh.length > 0 ? fresh : ready;
}

export function balanceLayer(context: BalanceLayerContext): Layer {
  const { endpoints, picker, load, clock, classifier, events, service, observeOutcome, zoneAware, firstAnswer } =
    context;
  const subsets = new Subsets(endpoints, context.createPicker ?? (() => picker));

  const finish = (
    req: MeshRequest,
    endpoint: Endpoint,
    start: number,
    res: MeshResponse | undefined,
    error: unknown,
  ): void => {
    endpoint.inflight--;
    endpoint.pendingStartSum = endpoint.inflight === 0 ? 0 : endpoint.pendingStartSum - start;
    // A breaker that refused the attempt sent nothing: no latency, no failure to record.
    if (error instanceof BreakerOpenError) return;
    const code = (error as { code?: unknown } | undefined)?.code;
    if (code === ErrorCodes.IDENTITY || code === ErrorCodes.TLS) {
      const refused = (req.call.refused ??= []);
      refused.push(endpoint.url);
      req.call.refusal = error;
      const subset = req.call.route?.subset ?? null;
      const ready = subset === null ? endpoints.ready : subsets.get(subset).ready;
      if (ready.every((e) => refused.includes(e.url))) req.call.noResend = true;
    }
    const outcome = classifier(req, res, error);
    if (observeOutcome !== undefined) {
      const ejections = observeOutcome(endpoint, outcome);
      if (ejections > 0) {
        req.call.note?.("weft.endpoint_ejected", { "weft.endpoint": endpoint.url, "weft.ejections": ejections });
      }
    }
    const now = clock.now();
    const rtt = now - start;
    const failed = isFailure(outcome);
    // A caller's abort says nothing about the endpoint's speed: keep it out of the estimate. A
    // shed (overloaded) answer is fast but not a sign of capacity: it weighs like a failure here,
    // so traffic steers away, though it counts against no breaker or ejection.
    if (res !== undefined || outcome !== "ignorable")
      load.observe(endpoint, rtt, failed || outcome === "overloaded", now);
    endpoint.requests++;
    if (failed) {
      endpoint.failures++;
      endpoint.consecutiveFailures++;
    } else if (outcome === "success") endpoint.consecutiveFailures = 0;
    if (events.attemptEnd.active) {
      events.attemptEnd.emit({
        service,
        method: req.method,
        path: req.path,
        endpoint: endpoint.url,
        attempt: req.attempt,
        route: req.call.route?.name,
        status: res?.status,
        response: res,
        error,
        outcome,
        durationMs: rtt,
      });
    }
  };

  return (next: Service): Service => {
    const send: Service = (req) => {
      const call = req.call;
      // A route's backend may be a subset of the endpoints (by discovery metadata), with its own picker.
      const subset = call.route === null ? null : call.route.subset;
      let ready = endpoints.ready;
      let chooser = picker;
      if (subset !== null) {
        const state = subsets.get(subset);
        ready = state.ready;
        chooser = state.picker;
      }
      if (ready.length === 0) {
        // A call made before discovery's first answer waits for it (bounded by the call's deadline)
        // instead of failing with no endpoints a few milliseconds after the client was made.
        const waiting = endpoints.all.length === 0 ? firstAnswer?.() : null;
        if (waiting != null) return untilAnswered(waiting, req).then(() => send(req));
        const error =
          subset === null || endpoints.ready.length === 0
            ? noneReady(service, endpoints, call.attempts)
            : noneInSubset(service, subset, subsets.count(subset), call.attempts);
        if (error instanceof BreakerOpenError) call.note?.("weft.breaker_open", { "weft.endpoint": "*" });
        return Promise.reject(error);
      }
      // Never again to an endpoint whose handshake failed in this call (it would fail alike).
      const refused = call.refused;
      const usable = refused === null ? ready : ready.filter((e) => !refused.includes(e.url));
      if (usable.length === 0) return Promise.reject(call.refusal);
      const candidates =
        zoneAware === undefined ? usable : zoneCandidates(usable, endpoints.all, zoneAware.zone, zoneAware);
      // A resend (retry or hedge) prefers an endpoint this call has not tried yet — in the zone
      // first, then anywhere.
      let pool = candidates;
      if (call.tried.length > 0) {
        pool = untried(candidates, call.tried);
        if (pool === candidates && candidates !== usable) pool = untried(usable, call.tried);
      }
      // One clock reading for the pick (load decay) and the attempt's start.
      const start = clock.now();
      const endpoint = chooser.pick(pool, req, start);
      endpoint.inflight++;
      call.attempts++;
      call.lastEndpoint = endpoint.url;
      call.tried.push(endpoint.url);
      if (events.attemptStart.active) {
        events.attemptStart.emit({
          service,
          method: req.method,
          path: req.path,
          endpoint: endpoint.url,
          attempt: req.attempt,
          route: call.route?.name,
        });
      }
      endpoint.pendingStartSum += start;
      call.pickedAt = start;
      let pending: Promise<MeshResponse>;
      try {
        pending = next({ ...req, endpoint });
      } catch (error) {
        finish(req, endpoint, start, undefined, error);
        return Promise.reject(error);
      }
      return pending.then(
        (res) => {
          finish(req, endpoint, start, res, undefined);
          return res;
        },
        (error: unknown) => {
          finish(req, endpoint, start, undefined, error);
          throw error;
        },
      );
    };
    return send;
  };
}

/** Waits for discovery's first answer, or rejects with the call's abort reason. */
function untilAnswered(answer: Promise<void>, req: MeshRequest): Promise<void> {
  const cancel = req.cancel;
  if (cancel === null) return answer;
  if (cancel.aborted) return Promise.reject(cancel.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => reject(cancel.reason);
    cancel.addEventListener("abort", onAbort);
    answer.then(() => {
      cancel.removeEventListener("abort", onAbort);
      resolve();
    }, reject);
  });
}

/**
 * The route layer: matches each call once against the route table in force (first match wins),
 * picks its backend (a weighted split, sticky by a key when asked), records the decision in
 * `CallState.route` — where the balance layer finds its endpoint subset, the retry layer its
 * overrides, the classifier its route's — gives the call its route's timeouts and idempotency,
 * injects the route's faults, sends a mirrored copy, and hands the call on: down this client's
 * stack, or to another client of the mesh for a service backend.
 *
 * It sits just below `trace`, above `deadline` and `retry`: a route's timeout and retry policy
 * must be known before those layers run, a split is decided once per call (its retries stay on
 * the backend it chose, as Envoy's weighted clusters do), and an injected abort is what the caller
 * sees — counted by `observe`, never retried (as Envoy's fault filter answers before its router).
 *
 * A mirrored copy never delays or fails the call: it is sent beside it, bounded in flight
 * (beyond the bound it is dropped, not queued), only when the body can be sent twice, with its
 * own timeout and cancellation, without retries; its answer is counted and discarded.
 */
import { Cancellation } from "../core/cancel.js";
import type { Clock, Random } from "../core/clock.js";
import { FaultInjectedError, NoRouteBackendError, TotalTimeoutError } from "../core/errors.js";
import { isReplayable } from "../core/request.js";
import { BufferedResponse } from "../core/response.js";
import { sleep } from "../core/sleep.js";
import {
  CallState,
  type CallTimeout,
  type Layer,
  type MeshRequest,
  type MeshResponse,
  type Service,
} from "../core/types.js";
import { wheelFor } from "../core/wheel.js";
import type { EndpointSubset } from "../core/route.js";
import type { BackendState, CompiledRoute, MirrorState, RouteTable } from "./table.js";

export interface RouteLayerContext {
  readonly service: string;
  /** The table in force now; a new version replaces it whole, between calls. */
  readonly table: () => RouteTable;
  readonly clock: Clock;
  readonly random: Random;
  /** The client's total deadline, ms (Infinity when off): an injected delay ends at the call's deadline. */
  readonly totalMs: number;
  /**
   * Another client of the mesh, entered at the top of its stack with the call already routed
   * (its own routes do not apply again); undefined when the mesh has no client by that name.
   */
  readonly peer: (service: string) => Service | undefined;
  /** This client's stack from `balance` down: where a copy for one of its subsets goes. */
  readonly mirrorPath: () => Service;
  /** True when a subset of this client's endpoints (null: any) has a ready endpoint now: a copy for none is not made. */
  readonly hasReady: (subset: EndpointSubset | null) => boolean;
}

/** Header set on an injected abort's response, so it is told from a real one in logs. */
const FAULT_HEADER = "x-weft-fault";

export function routeLayer(ctx: RouteLayerContext): Layer {
  const { service, clock, random, peer } = ctx;
  const wheel = wheelFor(clock);

  const toPeer = (route: CompiledRoute, name: string, req: MeshRequest): Promise<MeshResponse> => {
    const send = peer(name);
    if (send === undefined) return Promise.reject(new NoRouteBackendError(service, route.name, name));
    return send(req);
  };

  const mirror = (state: MirrorState, route: CompiledRoute, req: MeshRequest): void => {
    const config = state.config;
    if (config.percent < 100 && random() * 100 >= config.percent) return;
    if (!isReplayable(req)) {
      state.skipped++;
      return;
    }
    if (state.inflight >= config.maxInFlight) {
      state.dropped++;
      return;
    }
    // A target that cannot take the copy costs nothing: no request, no error made to be thrown away.
    const target = config.target.service;
    const peerSend = target === null ? undefined : peer(target);
    if (target === null ? !ctx.hasReady(config.target.subset) : peerSend === undefined) {
      state.unavailable++;
      return;
    }
    state.inflight++;
    state.sent++;
    // Its own call: its own cancellation and deadline (the caller's abort is the caller's), no retries.
    const call = new CallState();
    call.route = state.decision;
    const cancel = new Cancellation();
    const now = clock.now();
    const timeoutMs = config.timeoutMs;
    const copy: MeshRequest = {
      ...req,
      headers: config.header === false ? req.headers : { ...req.headers, [config.header]: "1" },
      cancel,
      deadline: now + timeoutMs,
      attempt: 0,
      endpoint: null,
      timeout: { totalMs: timeoutMs },
      call,
    };
    const timer = wheel.schedule(now + timeoutMs, () => cancel.abort(new TotalTimeoutError(timeoutMs)));
    let pending: Promise<MeshResponse>;
    try {
      pending = peerSend === undefined ? ctx.mirrorPath()(copy) : peerSend({ ...copy, service: target as string });
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      (res) => {
        timer.cancel();
        state.inflight--;
        if (res.status < 500) state.ok++;
        else state.failed++;
        res.dump().catch(() => {});
      },
      () => {
        timer.cancel();
        state.inflight--;
        state.failed++;
      },
    );
  };

  return (next) => {
    const forward = (route: CompiledRoute, backend: BackendState, req: MeshRequest): Promise<MeshResponse> => {
      // Counted when sent on: an injected abort never reaches the backend.
      backend.calls++;
      if (route.mirror !== null) mirror(route.mirror, route, req);
      const name = backend.config.service;
      return name === null ? next(req) : toPeer(route, name, req);
    };

    const abort = (route: CompiledRoute, status: number | null): Promise<MeshResponse> => {
      route.aborted++;
      if (status === null) return Promise.reject(new FaultInjectedError(service, route.name));
      return Promise.resolve(
        new BufferedResponse(status, "fault injected", { [FAULT_HEADER]: "abort", "content-type": "text/plain" }),
      );
    };

    return (req) => {
      const call = req.call;
      // Delegated here by another client's route: routed already.
      if (call.route !== null) return next(req);
      const route = ctx.table().match(req);
      const backend = route.pick(req, random);
      call.route = backend.decision;
      route.calls++;
      // The common case: the decision is all the route adds (the layers below read it).
      if (route.plain && backend.config.service === null) {
        backend.calls++;
        return next(req);
      }
      const config = route.config;
      const timeout = config.policy.timeout;
      const idempotent = config.idempotent === null || call.idempotentGiven ? req.idempotent : config.idempotent;
      const out =
        timeout === null && idempotent === req.idempotent
          ? req
          : { ...req, idempotent, timeout: timeout === null ? req.timeout : under(req.timeout, timeout) };
      const fault = config.fault;
      if (fault === null) return forward(route, backend, out);
      // Envoy's order: the delay first, then the abort; each sampled on its own.
      const aborted = fault.abort !== null && random() * 100 < fault.abort.percent;
      const status = fault.abort?.status ?? null;
      if (fault.delay === null || !(random() * 100 < fault.delay.percent)) {
        return aborted ? abort(route, status) : forward(route, backend, out);
      }
      route.delayed++;
      const now = clock.now();
      const start = call.startedAt >= 0 ? call.startedAt : now;
      const totalMs = out.timeout?.totalMs;
      const deadline = Math.min(
        out.deadline,
        start + (totalMs === undefined ? ctx.totalMs : totalMs === false ? Infinity : totalMs),
      );
      // The delay ends at the call's deadline; the deadline layer then fails the call as timed out.
      return sleep(wheel, Math.min(now + fault.delay.ms, deadline), out.cancel).then(() =>
        aborted ? abort(route, status) : forward(route, backend, out),
      );
    };
  };
}

/** A route's timeouts under a call's own: each the call gives wins. */
function under(own: CallTimeout | null, route: CallTimeout): CallTimeout {
  if (own === null) return route;
  return {
    attemptMs: own.attemptMs === undefined ? route.attemptMs : own.attemptMs,
    totalMs: own.totalMs === undefined ? route.totalMs : own.totalMs,
  };
}

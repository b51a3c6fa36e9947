/**
 * The inbound side's typed events, built like the client's (`core/events.ts`): `onX(listener)`
 * returns a disposer, nothing is built for an event nobody listens to, and each event is also
 * published on `node:diagnostics_channel` (`weft:server:<event>`).
 */
import { Emitter, type Listener } from "../core/events.js";
import type { Disposer } from "../core/types.js";
import type { Priority } from "./admission.js";
import type { AuthzDecision } from "./authz.js";

export interface RequestEndEvent {
  readonly service: string;
  readonly method: string;
  /** The route template when known, else the path (without the query). */
  readonly route: string;
  readonly status: number;
  readonly durationMs: number;
  /** True when the caller went away before the response finished. */
  readonly aborted: boolean;
  readonly priority: Priority;
}

export interface ShedEvent {
  readonly service: string;
  readonly method: string;
  readonly path: string;
  readonly priority: Priority;
  readonly limit: number;
  readonly inflight: number;
}

export interface AuthzEvent {
  readonly service: string;
  readonly method: string;
  readonly path: string;
  readonly decision: AuthzDecision;
  /** The caller's SPIFFE ID, when one was read (never a certificate or a header's raw value). */
  readonly identity: string | null;
  readonly reason: string;
}

export interface DeadlineRefusedEvent {
  readonly service: string;
  readonly method: string;
  readonly path: string;
  /** `expired`: 504, no time left on arrival; `malformed`: 400, the header could not be read. */
  readonly kind: "expired" | "malformed";
  readonly header: string;
}

export interface DrainEvent {
  readonly service: string;
  /** `draining`: readiness fails; `closing`: no new connections; `closed`: done. */
  readonly phase: "draining" | "closing" | "closed";
  readonly inflight: number;
}

export const SERVER_CHANNELS = Object.freeze({
  requestEnd: "weft:server:requestEnd",
  shed: "weft:server:shed",
  authz: "weft:server:authz",
  deadlineRefused: "weft:server:deadlineRefused",
  drain: "weft:server:drain",
});

export interface ServerEvents {
  /** An admitted request's response finished, or its caller went away. */
  onRequestEnd(listener: Listener<RequestEndEvent>): Disposer;
  /** Admission control turned a request away (503). */
  onShed(listener: Listener<ShedEvent>): Disposer;
  /** An authorization decision (every one, allowed included). */
  onAuthz(listener: Listener<AuthzEvent>): Disposer;
  /** A request refused for its deadline (504 expired, 400 unreadable). */
  onDeadlineRefused(listener: Listener<DeadlineRefusedEvent>): Disposer;
  /** The drain moved to its next phase. */
  onDrain(listener: Listener<DrainEvent>): Disposer;
}

export class ServerEventHub {
  readonly requestEnd = new Emitter<RequestEndEvent>(SERVER_CHANNELS.requestEnd);
  readonly shed = new Emitter<ShedEvent>(SERVER_CHANNELS.shed);
  readonly authz = new Emitter<AuthzEvent>(SERVER_CHANNELS.authz);
  readonly deadlineRefused = new Emitter<DeadlineRefusedEvent>(SERVER_CHANNELS.deadlineRefused);
  readonly drain = new Emitter<DrainEvent>(SERVER_CHANNELS.drain);

  readonly api: ServerEvents = Object.freeze({
    onRequestEnd: (l: Listener<RequestEndEvent>) => this.requestEnd.on(l),
    onShed: (l: Listener<ShedEvent>) => this.shed.on(l),
    onAuthz: (l: Listener<AuthzEvent>) => this.authz.on(l),
    onDeadlineRefused: (l: Listener<DeadlineRefusedEvent>) => this.deadlineRefused.on(l),
    onDrain: (l: Listener<DrainEvent>) => this.drain.on(l),
  });

  clear(): void {
    for (const value of Object.values(this)) if (value instanceof Emitter) value.clear();
  }
}

/**
 * The context of one inbound request, as its handler sees it through `inboundContext()`: the
 * caller's deadline (less the allowance) and cancellation — which every weft call made while
 * handling it inherits — plus who the caller is and how the request was classed.
 *
 * It is a `RequestContext` (core), so the client reads it without knowing about servers; the
 * fields below are for the application and for `weft/server` itself.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Cancellation } from "../core/cancel.js";
import type { Clock } from "../core/clock.js";
import { RequestContext, currentContext } from "../core/context.js";
import type { Priority } from "./admission.js";
import { readIdentity, type HeaderIdentityConfig, type IdentityReading, type PeerIdentity } from "./identity.js";
import type { ServerSpan } from "../telemetry/server.js";

const UNREAD: IdentityReading = Object.freeze({ kind: "none" });

export class InboundContext extends RequestContext {
  /** The service this server is. */
  readonly service: string;
  readonly method: string;
  /** The path, without the query string. */
  readonly path: string;
  readonly priority: Priority;
  /** The route template once a framework (or the `route` option) named it. */
  route: string | undefined = undefined;
  /** @internal When the request was admitted, on `clock`. */
  readonly startedAt: number;
  /** @internal */
  readonly req: IncomingMessage;
  /** @internal */
  readonly res: ServerResponse;
  /** `https` when the request came over TLS. */
  readonly scheme: "http" | "https";
  /** @internal The SERVER span, when weft made one. */
  span: ServerSpan | null = null;
  /** @internal Links of the server's list of requests in flight. */
  prev: InboundContext | null = null;
  /** @internal */
  next: InboundContext | null = null;
  /** @internal True once the request was accounted for (its response closed). */
  finished = false;
  #identity: IdentityReading | null;
  readonly #identityConfig: HeaderIdentityConfig | null;

  /** @internal Made by `inbound()` for each admitted request. */
  constructor(fields: {
    service: string;
    method: string;
    path: string;
    priority: Priority;
    req: IncomingMessage;
    res: ServerResponse;
    scheme: "http" | "https";
    deadline: number;
    cancel: Cancellation;
    clock: Clock;
    startedAt: number;
    identity: IdentityReading | null;
    identityConfig: HeaderIdentityConfig | null;
  }) {
    super({ deadline: fields.deadline, cancel: fields.cancel, clock: fields.clock });
    this.service = fields.service;
    this.method = fields.method;
    this.path = fields.path;
    this.priority = fields.priority;
    this.req = fields.req;
    this.res = fields.res;
    this.scheme = fields.scheme;
    this.startedAt = fields.startedAt;
    this.#identity = fields.identity;
    this.#identityConfig = fields.identityConfig;
  }

  /**
   * The caller's verified workload identity (its SPIFFE ID, from mTLS or a trusted proxy), or null.
   * A malformed one is null here too; `identityReading` tells the difference.
   */
  get identity(): PeerIdentity | null {
    const reading = this.identityReading;
    return reading.kind === "valid" ? reading.identity : null;
  }

  /** What reading the caller's identity found: none, a valid one, or a malformed one and why. */
  get identityReading(): IdentityReading {
    // Read on first use: a request nobody asks about pays nothing.
    this.#identity ??= readIdentity(this.req, this.#identityConfig) ?? UNREAD;
    return this.#identity;
  }
}

/**
 * The context of the inbound request being handled, or undefined outside one.
 * @example
 * const ctx = inboundContext();
 * if (ctx?.identity?.trustDomain !== "example.org") …;
 * await db.query(sql, { signal: ctx?.signal });   // ends with the request's deadline or its caller
 */
export function inboundContext(): InboundContext | undefined {
  const context = currentContext();
  return context instanceof InboundContext ? context : undefined;
}

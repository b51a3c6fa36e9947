/**
 * `inbound(options)`: the server side of the mesh, one instance per service a process serves.
 * Each request goes through, in this order, and each step says why it sits there:
 *
 *   health     `/healthz`, `/readyz` answered first: a probe must never be shed, denied or traced
 *   deadline   the caller's time left: refused at once (504) if it has already run out, so no work
 *              starts that nobody will wait for; a bad header is the caller's bug (400)
 *   authz      who may call this route: before admission, so a denied caller gets its 403 whatever
 *              the load, and takes no slot
 *   admission  the concurrency limit and priorities: shed (503) before any handler runs
 *   context    the request context (deadline, cancellation, identity) in AsyncLocalStorage, and
 *              the SERVER span — then the handler, inside both
 *
 * When the response finishes (or the caller goes away) the slot is freed, the adaptive limit gets
 * the latency, the span ends, the metrics record; a caller that went away cancels every call made
 * for it (`RequestAbortedError`).
 *
 * The framework adapters (`node.ts`, `fastify.ts`) call `admit` and `run`; this file knows no
 * framework beyond `node:http`'s request and response.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Server as TlsServer, TLSSocket, TlsOptions as TlsServerOptions } from "node:tls";
import type { TlsMaterial } from "../security/material.js";
import { Cancellation } from "../core/cancel.js";
import { CallStats } from "../core/call-stats.js";
import { SHED_HEADER } from "../core/classifier.js";
import { runWithContext } from "../core/context.js";
import { RequestAbortedError } from "../core/errors.js";
import { pathOnly } from "../core/path-pattern.js";
import type { ServerSnapshot, ServerSource, ServerState } from "../core/server-snapshot.js";
import type { Disposer } from "../core/types.js";
import { serverMetrics, startServerSpan, withTraceContext, type ServerMetrics } from "../telemetry/server.js";
import { Admission, type Priority } from "./admission.js";
import { jsonAnswer, type Answer } from "./answer.js";
import { InboundContext } from "./context.js";
import { readDeadline } from "./deadline.js";
import { runDrain, type DrainResult } from "./drain.js";
import { ServerEventHub, type ServerEvents } from "./events.js";
import { readIdentity, type IdentityReading } from "./identity.js";
import { checkPriority, normalizeInboundOptions, type InboundConfig, type InboundOptions } from "./options.js";
import { connectMiddleware, nodeHandler, type Middleware, type RequestHandler } from "./node.js";
import { fastifyPlugin, type FastifyPlugin } from "./fastify.js";

/** Where the context of a response's request is kept, so one shared `close` listener serves every response. */
const CONTEXT = Symbol("weft.server.context");
type TrackedResponse = ServerResponse & { [CONTEXT]?: InboundContext };

/** At most one authorization warning per this long (the rest are counted, and said with the next). */
const WARN_INTERVAL_MS = 1000;

class Counters {
  requests = 0;
  errors = 0;
  aborted = 0;
  shed = 0;
  expired = 0;
  badDeadline = 0;
}

export class Inbound implements ServerSource {
  readonly service: string;
  readonly config: InboundConfig;
  readonly #hub = new ServerEventHub();
  readonly #counters = new Counters();
  readonly #authzCounts = { allow: 0, deny: 0, unauthenticated: 0, malformed: 0 };
  readonly #tlsServers = new WeakSet<Server>();
  readonly #tlsUnsubscribe: (() => void)[] = [];
  readonly #handshakeFailures: Record<string, number> = {};
  /** Identity header values seen and their readings (bounded; see identity.ts). */
  readonly #identityCache = new Map<string, IdentityReading>();
  readonly #stats = new CallStats();
  readonly #admission: Admission | null;
  readonly #metrics: ServerMetrics | null;
  readonly #servers = new Set<Server>();
  #lastServer: Server | undefined;
  #state: ServerState = "serving";
  #inflight = 0;
  /** Head of the intrusive list of requests in flight (for the drain). */
  #head: InboundContext | null = null;
  #idle: (() => void) | null = null;
  #draining: Promise<DrainResult> | undefined;
  #leaveMesh: Disposer | null;
  readonly #signalHandlers: [NodeJS.Signals, () => void][] = [];
  #lastWarnAt = -Infinity;
  #suppressed = 0;
  #badPriorityWarned = false;
  #middleware: Middleware | undefined;
  #fastify: FastifyPlugin | undefined;
  /** Shared by every response: `this` is the response closing. */
  readonly #onClose: (this: TrackedResponse) => void;

  constructor(options: InboundOptions) {
    const config = (this.config = normalizeInboundOptions(options));
    this.service = config.service;
    this.#admission = config.admission === false ? null : new Admission(config.admission);
    // Joining the mesh may fail (a server of that service is there already): before anything is made.
    this.#leaveMesh = config.mesh?.addServer(this) ?? null;
    this.#metrics =
      config.metrics === false
        ? null
        : serverMetrics(config.service, () => this.snapshot(), config.metrics.meterProvider);
    const finish = (ctx: InboundContext): void => this.#finish(ctx);
    this.#onClose = function (this: TrackedResponse) {
      const ctx = this[CONTEXT];
      if (ctx !== undefined) finish(ctx);
    };
    for (const signal of config.drain.signals) {
      const onSignal = (): void => {
        void this.drain().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once(signal, onSignal);
      this.#signalHandlers.push([signal, onSignal]);
    }
  }

  /**
   * Wraps a `node:http` request listener: `http.createServer(server.handler(app))`. What `fn`
   * throws or rejects with becomes a 500 and a warning.
   */
  handler(fn: RequestHandler): (req: IncomingMessage, res: ServerResponse) => void {
    return nodeHandler(this, fn);
  }

  /** Connect/Express middleware, `app.use(server.middleware)` — before the routes and body parsers. */
  get middleware(): Middleware {
    this.#middleware ??= connectMiddleware(this);
    return this.#middleware;
  }

  /** A Fastify 5 plugin covering every route: `fastify.register(server.fastify)`. */
  get fastify(): FastifyPlugin {
    this.#fastify ??= fastifyPlugin(this);
    return this.#fastify;
  }

  /** Typed events: request ends, sheds, authorization decisions, refused deadlines, drain phases. */
  get events(): ServerEvents {
    return this.#hub.api;
  }

  get state(): ServerState {
    return this.#state;
  }

  /**
   * Names a server to close when draining. Servers are also picked up from the requests they
   * carry, but one that has served nothing yet is known only this way.
   */
  attach(server: Server): this {
    this.#servers.add(server);
    const tls = this.config.tls;
    if (
      tls !== null &&
      typeof (server as unknown as Partial<TlsServer>).setSecureContext === "function" &&
      !this.#tlsServers.has(server)
    ) {
      const tlsServer = server as unknown as TlsServer;
      this.#tlsServers.add(server);
      // New material applies to new connections; an open one made with older material answers its
      // next request with `Connection: close`, so it drains instead of living on the old certificate.
      this.#tlsUnsubscribe.push(tls.source.onChange((m) => tlsServer.setSecureContext(secureContextOf(m))));
      tlsServer.on("secureConnection", (socket: TLSSocket) => {
        const serial = (socket.getCertificate() as { serialNumber?: string } | null)?.serialNumber;
        if (serial !== undefined) (socket as TaggedSocket)[CERT_SERIAL] = serial;
      });
      tlsServer.on("tlsClientError", (error: NodeJS.ErrnoException) => {
        const reason = error.code ?? "ERR_TLS_HANDSHAKE";
        this.#handshakeFailures[reason] = (this.#handshakeFailures[reason] ?? 0) + 1;
      });
    }
    return this;
  }

  /**
   * Options for `https.createServer(server.tlsOptions(), …)` (or `tls.createServer`): the current
   * certificate, key and trust bundle, client certificates requested and verified as `clientCert`
   * says, TLS 1.2 at least. Pass the server to `attach()` so rotated material applies.
   * @example https.createServer(server.tlsOptions(), server.handler(app)); server.attach(httpsServer)
   */
  tlsOptions(): TlsServerOptions {
    const tls = this.config.tls;
    if (tls === null) throw new Error(`weft/server ${this.service}: tlsOptions() needs inbound({ tls })`);
    return {
      ...secureContextOf(tls.source.current),
      requestCert: tls.clientCert !== "none",
      rejectUnauthorized: tls.clientCert === "require",
      minVersion: "TLSv1.2",
    };
  }

  /**
   * Decides one request before any handler runs: answers it (a health check, or a refusal) or
   * admits it and returns its context. An admitted request must be passed to `run`.
   * @internal for the adapters
   */
  admit(req: IncomingMessage, res: ServerResponse): InboundContext | Answer | Promise<Answer> {
    const config = this.config;
    const method = req.method ?? "GET";
    const path = pathOnly(req.url ?? "/");
    const health = config.health;
    if (health !== false && (method === "GET" || method === "HEAD")) {
      if (path === health.livePath) return jsonAnswer(200, { status: "ok", service: this.service });
      if (path === health.readyPath) return this.#readiness();
    }
    const server = (req.socket as { server?: Server } | null)?.server;
    if (server !== undefined && server !== this.#lastServer) {
      this.#lastServer = server;
      this.#servers.add(server);
    }
    this.#counters.requests++;
    const clock = config.clock;
    const start = clock.now();

    let deadline = Infinity;
    const dl = config.deadline;
    if (dl !== false) {
      const reading = readDeadline(req.headers, dl.header, dl.grpcTimeout);
      let ms = dl.defaultMs === false ? Infinity : dl.defaultMs;
      if (reading.kind === "malformed")
        return this.#refuseDeadline("malformed", reading.header, method, path, reading.message);
      if (reading.kind === "ms") {
        if (reading.ms <= 0)
          return this.#refuseDeadline(
            "expired",
            reading.header,
            method,
            path,
            `the caller's deadline (${reading.header}) had passed when the request arrived`,
          );
        ms = Math.min(reading.ms, dl.maxMs);
      }
      if (ms !== Infinity) deadline = start + ms - dl.allowanceMs;
    }

    let identity: IdentityReading | null = null;
    if (config.identity !== null) identity = readIdentity(req, config.identity, this.#identityCache);
    const authorizer = config.authorizer;
    if (authorizer !== null) {
      identity ??= readIdentity(req, null);
      const result = authorizer.decide(method, path, identity);
      this.#authzCounts[result.decision]++;
      this.#metrics?.authz(result.decision);
      const id = identity.kind === "valid" ? identity.identity.id : null;
      if (this.#hub.authz.active)
        this.#hub.authz.emit({
          service: this.service,
          method,
          path,
          decision: result.decision,
          identity: id,
          reason: result.reason,
        });
      if (result.decision !== "allow") {
        this.#warnRateLimited(`weft/server ${this.service}: ${result.decision} ${method} ${path}: ${result.reason}`);
        return jsonAnswer(result.status, {
          error: result.decision === "deny" ? "forbidden" : "unauthenticated",
          message: result.reason,
        });
      }
    }

    const priority = config.priority === undefined ? "normal" : this.#priorityOf(req);
    const admission = this.#admission;
    if (admission !== null && !admission.tryAcquire(priority)) {
      this.#counters.shed++;
      this.#metrics?.shed(priority);
      if (this.#hub.shed.active)
        this.#hub.shed.emit({
          service: this.service,
          method,
          path,
          priority,
          limit: admission.limit,
          inflight: admission.inflight,
        });
      return jsonAnswer(
        503,
        {
          error: "shed",
          message: `${this.service} is at its concurrency limit (${admission.limit}); try another instance`,
        },
        { "retry-after": String(config.retryAfterSeconds), [SHED_HEADER]: "concurrency" },
      );
    }

    const ctx = new InboundContext({
      service: this.service,
      method,
      path,
      priority,
      req,
      res,
      scheme: (req.socket as { encrypted?: boolean } | null)?.encrypted === true ? "https" : "http",
      deadline,
      cancel: new Cancellation(),
      clock,
      startedAt: start,
      identity,
      identityConfig: config.identity,
    });
    this.#inflight++;
    const head = this.#head;
    if (head !== null) head.prev = ctx;
    ctx.next = head;
    this.#head = ctx;
    (res as TrackedResponse)[CONTEXT] = ctx;
    res.on("close", this.#onClose);
    if (this.#state !== "serving") res.setHeader("connection", "close");
    else if (config.tls !== null) {
      const serial = (req.socket as TaggedSocket | null)?.[CERT_SERIAL];
      if (serial !== undefined && serial !== config.tls.source.current.serial) res.setHeader("connection", "close");
    }
    if (config.tracing) ctx.span = startServerSpan(req, method, path, ctx.scheme);
    return ctx;
  }

  /**
   * Runs `fn` (the handler, or the rest of a framework's chain) in an admitted request's context.
   * Adapters that lose the context across their own stream events call it again to re-enter.
   * @internal for the adapters
   */
  run<T>(ctx: InboundContext, fn: () => T): T {
    const span = ctx.span;
    return span === null ? runWithContext(ctx, fn) : withTraceContext(span.context, () => runWithContext(ctx, fn));
  }

  /** Begins the graceful stop (see `drain.ts`); calling it again returns the same drain. */
  drain(): Promise<DrainResult> {
    this.#draining ??= this.#drain();
    return this.#draining;
  }

  snapshot(): ServerSnapshot {
    const clock = this.config.clock;
    const now = clock.now();
    return {
      service: this.service,
      state: this.#state,
      inflight: this.#inflight,
      counters: { ...this.#counters },
      authz: this.config.authorizer === null ? null : { ...this.#authzCounts },
      admission: this.#admission?.snapshot() ?? null,
      stats: this.#stats.snapshot(now, clock.wallNow()),
      tls:
        this.config.tls === null
          ? null
          : {
              clientCert: this.config.tls.clientCert,
              material: this.config.tls.source.snapshot(),
              handshakeFailures: { ...this.#handshakeFailures },
            },
    };
  }

  /**
   * Leaves the mesh's snapshot, removes the signal listeners and stops the metrics. It does not
   * stop the HTTP server: that is `drain()` (or the server's own `close()`).
   */
  async close(): Promise<void> {
    this.#leaveMesh?.();
    this.#leaveMesh = null;
    for (const [signal, handler] of this.#signalHandlers) process.off(signal, handler);
    this.#signalHandlers.length = 0;
    this.#metrics?.dispose();
    this.#hub.clear();
    for (const unsubscribe of this.#tlsUnsubscribe) unsubscribe();
    this.#tlsUnsubscribe.length = 0;
  }

  async #drain(): Promise<DrainResult> {
    this.#state = "draining";
    // Requests already in flight close their connection after they answer, too.
    for (let ctx = this.#head; ctx !== null; ctx = ctx.next)
      if (!ctx.res.headersSent) ctx.res.setHeader("connection", "close");
    const { drain, clock } = this.config;
    return runDrain({
      clock,
      graceMs: drain.graceMs,
      delayMs: drain.delayMs,
      deregister: drain.deregister,
      servers: this.#servers,
      inflight: () => this.#inflight,
      idle: () => (this.#inflight === 0 ? Promise.resolve() : new Promise<void>((resolve) => (this.#idle = resolve))),
      phase: (phase) => {
        if (phase === "closed") this.#state = "closed";
        if (this.#hub.drain.active) this.#hub.drain.emit({ service: this.service, phase, inflight: this.#inflight });
      },
      warn: this.config.warn,
    });
  }

  #finish(ctx: InboundContext): void {
    if (ctx.finished) return;
    ctx.finished = true;
    const res = ctx.res;
    (res as TrackedResponse)[CONTEXT] = undefined;
    const clock = this.config.clock;
    const now = clock.now();
    const durationMs = now - ctx.startedAt;
    const aborted = !res.writableFinished;
    const status = res.statusCode;
    if (aborted) {
      this.#counters.aborted++;
      // Nobody is waiting any more: cancel every call made for this request.
      ctx.cancel.abort(new RequestAbortedError(this.service, ctx.method, ctx.path));
    } else if (status >= 500) this.#counters.errors++;
    // Only a request that was answered, and not with a 5xx, says how fast the server is.
    this.#admission?.release(aborted || status >= 500 ? Number.NaN : durationMs, now);
    this.#inflight--;
    if (ctx.prev !== null) ctx.prev.next = ctx.next;
    else this.#head = ctx.next;
    if (ctx.next !== null) ctx.next.prev = ctx.prev;
    ctx.prev = ctx.next = null;
    ctx.end();
    this.#stats.record(now, durationMs, aborted ? 0 : status >= 500 ? -1 : 1, 0, 0);
    const route = ctx.route ?? this.#routeOf(ctx.req);
    this.#metrics?.request(durationMs, ctx.method, status, route, ctx.scheme);
    ctx.span?.end(status, route, aborted);
    if (this.#hub.requestEnd.active) {
      this.#hub.requestEnd.emit({
        service: this.service,
        method: ctx.method,
        route: route ?? ctx.path,
        status,
        durationMs,
        aborted,
        priority: ctx.priority,
      });
    }
    if (this.#state !== "serving") {
      // Draining: a connection whose last request just ended is idle now; close it at once.
      setImmediate(() => {
        for (const server of this.#servers) if (!server.listening) server.closeIdleConnections();
      });
      if (this.#inflight === 0 && this.#idle !== null) {
        const idle = this.#idle;
        this.#idle = null;
        idle();
      }
    }
  }

  async #readiness(): Promise<Answer> {
    if (this.#state !== "serving") return jsonAnswer(503, { status: "draining", service: this.service });
    const ready = this.config.health === false ? undefined : this.config.health.ready;
    if (ready !== undefined) {
      let ok: boolean;
      try {
        ok = (await ready()) === true;
      } catch (error) {
        return jsonAnswer(503, {
          status: "not ready",
          service: this.service,
          message: error instanceof Error ? error.message : String(error),
        });
      }
      if (!ok) return jsonAnswer(503, { status: "not ready", service: this.service });
    }
    return jsonAnswer(200, { status: "ready", service: this.service });
  }

  #refuseDeadline(
    kind: "expired" | "malformed",
    header: string,
    method: string,
    path: string,
    message: string,
  ): Answer {
    if (kind === "expired") this.#counters.expired++;
    else this.#counters.badDeadline++;
    this.#metrics?.deadline(kind);
    if (this.#hub.deadlineRefused.active)
      this.#hub.deadlineRefused.emit({ service: this.service, method, path, kind, header });
    return kind === "expired"
      ? jsonAnswer(504, { error: "deadline_expired", message })
      : jsonAnswer(400, { error: "bad_deadline", message });
  }

  #priorityOf(req: IncomingMessage): Priority {
    const value = (this.config.priority as (req: IncomingMessage) => Priority)(req);
    try {
      return checkPriority(value);
    } catch (error) {
      if (!this.#badPriorityWarned) {
        this.#badPriorityWarned = true;
        this.config.warn(
          `weft/server ${this.service}: ${(error as Error).message}; treating such requests as "normal"`,
        );
      }
      return "normal";
    }
  }

  /** The route template: the adapter's, the `route` option's, or Express's matched route. */
  #routeOf(req: IncomingMessage): string | undefined {
    if (this.config.route !== undefined) return this.config.route(req);
    const express = req as IncomingMessage & { route?: { path?: unknown }; baseUrl?: unknown };
    const path = express.route?.path;
    if (typeof path !== "string") return undefined;
    return (typeof express.baseUrl === "string" ? express.baseUrl : "") + path;
  }

  #warnRateLimited(message: string): void {
    const now = this.config.clock.now();
    if (now - this.#lastWarnAt < WARN_INTERVAL_MS) {
      this.#suppressed++;
      return;
    }
    this.#lastWarnAt = now;
    const more = this.#suppressed;
    this.#suppressed = 0;
    this.config.warn(more === 0 ? message : `${message} (and ${more} more refusals since the last warning)`);
  }
}

/**
 * The inbound side of the mesh for one service: deadline propagation, admission control,
 * identity and access rules, health, drain, a SERVER span and metrics. Mount it with
 * `handler(fn)` (node:http), `middleware` (Express, Connect) or `fastify` (a Fastify plugin).
 * @example
 * const server = inbound({ service: "catalog", shed: { adaptive: true } });
 * http.createServer(server.handler(app)).listen(8080);
 */
export function inbound(options: InboundOptions): Inbound {
  return new Inbound(options);
}

/** The key, certificate and CA of `material`, as `tls.createSecureContext` / `setSecureContext` take them. */
function secureContextOf(material: TlsMaterial): { key?: string; cert?: string; ca?: string } {
  return {
    ...(material.key === undefined ? {} : { key: material.key }),
    ...(material.cert === undefined ? {} : { cert: material.cert }),
    ...(material.ca === undefined ? {} : { ca: material.ca }),
  };
}

/** The serial of the certificate a TLS connection was made with (set by `attach()`'s servers). */
const CERT_SERIAL = Symbol("weft.certSerial");
type TaggedSocket = { [CERT_SERIAL]?: string };

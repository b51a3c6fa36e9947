/**
 * The route entry of the stack plan: the client's routes (in code, and from a dynamic config
 * source) compiled into route tables, the route layer that reads them, and the config versions'
 * life — each new document validated completely by the same rules and messages as
 * `createClient`, applied whole between calls, or rejected with a warning naming the source, the
 * version, the path in the document and the value while the last good version keeps serving.
 *
 * A route overrides the client's own `timeout`, `retry` and `hedge` by the same rules that check
 * them on the client (the plan's), merged over the client's options as a mesh's defaults merge
 * under a client's: a config document's top level first, then the route's own.
 */
import type { ConfigSource, ConfigVersion, ConfigWatch, ConfigWatchSnapshot } from "../core/config-source.js";
import { isDeepStrictEqual } from "node:util";
import type { Endpoint, EndpointSet } from "../core/endpoint.js";
import { InvalidOptionsError } from "../core/errors.js";
import { inSubset, type EndpointSubset } from "../core/route.js";
import type { ConfigEvent } from "../core/events.js";
import type { CallTimeout, Disposer } from "../core/types.js";
import { checkKeys, fail, isPlainObject } from "../core/validate.js";
import { routeLayer } from "../route/layer.js";
import {
  FALLBACK_NAME,
  normalizeRoutes,
  ROUTE_POLICY_KEYS,
  type PolicyNormalizer,
  type RouteConfig,
  type RoutePolicy,
} from "../route/options.js";
import { RouteTable, type CompiledRoute } from "../route/table.js";
import type { BuildContext, OptionRule, PlanHandle } from "./plan.js";
import type { ClientConfig } from "./options.js";
import { POLICY_RULES, type TimeoutConfig } from "./policy-rules.js";

/** The keys a dynamic config document may hold: the routes, and the policies they may override service-wide. */
const DOCUMENT_KEYS = Object.freeze(["routes", ...ROUTE_POLICY_KEYS]);

/** True when the client routes: it has routes in code or a config source. */
export function routed(config: ClientConfig): boolean {
  return config.options.routes !== undefined || config.options.configSource !== undefined;
}

/**
 * `routes`' option rule: checks the routes against the defaults (so a bad route fails at once,
 * with its path) and keeps them as given; they are compiled against the client's own options
 * when the client is built.
 */
export function checkRoutes(value: unknown, at: string): unknown {
  if (value === undefined) return undefined;
  normalizeRoutes(value, at, "", policyNormalizer(POLICY_RULES, {}, {}));
  return Object.freeze([...(value as unknown[])]);
}

/**
 * Checks a config document as a client would apply it, against the client's defaults (the CLI
 * checks a document before it writes it). Throws `InvalidOptionsError` naming the path in the
 * document and the value.
 * @example validateConfigDocument("catalog", { routes: [{ match: { path: "/v1/*" }, timeout: { totalMs: 500 } }] })
 */
export function validateConfigDocument(service: string, document: unknown): void {
  compileDocument(service, document, {}, undefined, POLICY_RULES, { source: "check", version: "check", since: 0 });
}

/** The status of the dynamic config, for the snapshot. */
interface ConfigStatus {
  watch: ConfigWatch;
  /** Wall-clock ms when the version in force was applied. */
  appliedAt: number | undefined;
  rejected: number;
  lastRejected: { readonly version: string; readonly error: string } | null;
}

export function routingPart(ctx: BuildContext, rules: Readonly<Record<string, OptionRule>> = POLICY_RULES): PlanHandle {
  const { config, service, clock, random, events } = ctx;
  const raw = config.raw;
  const codeRoutes = config.options.routes as readonly unknown[] | undefined;
  const source = config.options.configSource as ConfigSource | undefined;
  // The routes in code, against the client's own options: a merge that does not hold fails here.
  let table = compileDocument(service, { routes: codeRoutes ?? [] }, raw, undefined, rules, {
    source: "code",
    version: "code",
    since: clock.wallNow(),
  });
  let status: ConfigStatus | null = null;
  const disposers: Disposer[] = [];

  const emit = (source: string, version: string | undefined, kind: ConfigEvent["kind"], error?: string): void => {
    if (events.config.active) events.config.emit({ service, source, version, kind, error });
  };
  /** The document in force (undefined while the routes in code serve). */
  let applied: unknown = undefined;
  const apply = (version: ConfigVersion): void => {
    if (applied !== undefined && isDeepStrictEqual(version.document, applied)) {
      // The same document again (a put of the same value, a new revision): the version in force
      // takes the new label; nothing to rebuild, the counts go on.
      table.version = version.version;
      if (status !== null) status.lastRejected = null;
      return emit(version.source, version.version, "applied");
    }
    try {
      table = compileDocument(service, version.document, raw, codeRoutes, rules, {
        ...version,
        since: clock.wallNow(),
      });
      applied = version.document;
    } catch (error) {
      if (!(error instanceof InvalidOptionsError)) throw error;
      const message = error.message;
      if (status !== null) {
        status.rejected++;
        status.lastRejected = { version: version.version, error: message };
      }
      ctx.warn(
        `weft config ${version.source} (${version.version}) for "${service}": rejected: ${message}; keeping ${table.version === "code" ? "the routes in code" : table.version}`,
      );
      return emit(version.source, version.version, "rejected", message);
    }
    if (status !== null) {
      status.appliedAt = clock.wallNow();
      status.lastRejected = null;
    }
    emit(version.source, version.version, "applied");
  };

  if (source !== undefined) {
    const watch = source.watch(service, { clock, random, warn: ctx.warn });
    status = { watch, appliedAt: undefined, rejected: 0, lastRejected: null };
    let stale = false;
    disposers.push(
      // Only the turns: stale when the source starts failing, fresh when it recovers.
      watch.onState((state: ConfigWatchSnapshot) => {
        if (state.stale === stale) return;
        stale = state.stale;
        emit(state.source, state.version, state.stale ? "stale" : "fresh", state.lastError);
      }),
      watch.subscribe(apply),
    );
  }

  const layer = routeLayer({
    service,
    table: () => table,
    clock,
    random,
    totalMs: config.totalMs,
    peer: ctx.peer,
    mirrorPath: () => ctx.stackFrom("balance"),
    hasReady: readyIn(ctx.endpoints),
  });
  return {
    layers: [layer],
    snapshot: () => routingSnapshot(table, status),
    close: async () => {
      for (const dispose of disposers) dispose();
      await status?.watch.close();
    },
  };
}

/** Whether a subset has a ready endpoint now; the answer kept until the set's ready list changes. */
function readyIn(endpoints: EndpointSet): (subset: EndpointSubset | null) => boolean {
  const known = new Map<string, { from: readonly Endpoint[]; ready: boolean }>();
  return (subset) => {
    const ready = endpoints.ready;
    if (subset === null) return ready.length > 0;
    const seen = known.get(subset.key);
    if (seen !== undefined && seen.from === ready) return seen.ready;
    if (known.size >= 64) known.clear();
    const answer = ready.some((e) => inSubset(e, subset));
    known.set(subset.key, { from: ready, ready: answer });
    return answer;
  };
}

/** `client.snapshot().routing`: the version in force, the dynamic config's state, each route's counts. */
export interface RoutingSnapshot {
  /** `"code"`, or the config source the version in force came from. */
  readonly source: string;
  /** `"code"`, or the version in force (`"rev 42"`, `"sha256:…"`). */
  readonly version: string;
  /** Wall-clock ms since when the version in force serves: the routes' counts start there. */
  readonly since: number;
  /** The dynamic config's state; null without `configSource`. */
  readonly config: {
    readonly source: string;
    /** The last version the source read (it may have been rejected); null before the first. */
    readonly latest: string | null;
    /** Set while the source fails (the version in force keeps serving). */
    readonly stale: boolean;
    readonly lastError: string | null;
    /** Wall-clock ms when the version in force was applied; null while the routes in code serve. */
    readonly appliedAt: number | null;
    /** Versions rejected by validation since the client started. */
    readonly rejected: number;
    /** The last rejection, until a version applies. */
    readonly lastRejected: { readonly version: string; readonly error: string } | null;
  } | null;
  /** The routes of the version in force, in order, then `default` (what no route takes). Counts start with the version. */
  readonly routes: readonly RouteSnapshot[];
}

export interface RouteSnapshot {
  readonly name: string;
  readonly calls: number;
  /** Calls delayed and aborted by the route's fault injection. */
  readonly faults: { readonly delayed: number; readonly aborted: number } | null;
  /** Each backend: its label, its share in percent, its calls. */
  readonly backends: readonly { readonly backend: string; readonly percent: number; readonly calls: number }[];
  readonly mirror: {
    readonly target: string;
    readonly percent: number;
    readonly inflight: number;
    readonly sent: number;
    readonly ok: number;
    readonly failed: number;
    readonly dropped: number;
    readonly skipped: number;
    /** Not sent: the target had no ready endpoint, or its service no client. */
    readonly unavailable: number;
  } | null;
}

function routingSnapshot(table: RouteTable, status: ConfigStatus | null): RoutingSnapshot {
  let configSnapshot: RoutingSnapshot["config"] = null;
  if (status !== null) {
    const state = status.watch.snapshot();
    configSnapshot = {
      source: state.source,
      latest: state.version ?? null,
      stale: state.stale,
      lastError: state.lastError ?? null,
      appliedAt: status.appliedAt ?? null,
      rejected: status.rejected,
      lastRejected: status.lastRejected,
    };
  }
  return {
    source: table.source,
    version: table.version,
    since: table.since,
    config: configSnapshot,
    routes: [...table.routes, table.fallback].map(routeSnapshot),
  };
}

function routeSnapshot(route: CompiledRoute): RouteSnapshot {
  const total = route.config.backends.reduce((sum, b) => sum + b.weight, 0);
  const mirror = route.mirror;
  return {
    name: route.name,
    calls: route.calls,
    faults: route.config.fault === null ? null : { delayed: route.delayed, aborted: route.aborted },
    backends: route.backends.map((b) => ({
      backend: b.config.label,
      percent: Math.round((b.config.weight / total) * 10_000) / 100,
      calls: b.calls,
    })),
    mirror:
      mirror === null
        ? null
        : {
            target: mirror.config.target.label,
            percent: mirror.config.percent,
            inflight: mirror.inflight,
            sent: mirror.sent,
            ok: mirror.ok,
            failed: mirror.failed,
            dropped: mirror.dropped,
            skipped: mirror.skipped,
            unavailable: mirror.unavailable,
          },
  };
}

/**
 * A route table from a config document (`{ routes?, timeout?, retry?, hedge? }`) over the
 * client's raw options. Routes absent from the document are the routes in code (`codeRoutes`).
 * Throws `InvalidOptionsError` naming the path in the document.
 */
function compileDocument(
  service: string,
  document: unknown,
  raw: Readonly<Record<string, unknown>>,
  codeRoutes: readonly unknown[] | undefined,
  rules: Readonly<Record<string, OptionRule>>,
  from: { readonly source: string; readonly version: string; readonly since: number },
): RouteTable {
  if (!isPlainObject(document)) fail("(document)", document, `an object { ${DOCUMENT_KEYS.join("?, ")}? }`);
  checkKeys(document, DOCUMENT_KEYS, "");
  const top: Record<string, unknown> = {};
  for (const key of ROUTE_POLICY_KEYS) if (document[key] !== undefined) top[key] = document[key];
  const normalizer = policyNormalizer(rules, raw, top);
  const routes = normalizeRoutes(document.routes ?? codeRoutes ?? [], "routes", service, normalizer);
  const fallback: RouteConfig = Object.freeze({
    name: FALLBACK_NAME,
    match: Object.freeze({ methods: null, path: null, shape: null, headers: [], query: [] }),
    backends: Object.freeze([Object.freeze({ weight: 1, subset: null, service: null, label: "self" })]),
    sticky: null,
    mirror: null,
    fault: null,
    policy: normalizer({}, ""),
    idempotent: null,
    classifier: null,
  });
  return new RouteTable(
    from.source,
    from.version,
    from.since,
    routes,
    fallback,
    normalizer({ retry: false, hedge: false }, "mirror"),
  );
}

/**
 * Normalizes a route's policy options — each merged over the document's top level (`top`), merged
 * over the client's own (`raw`), by the option's merge rule — with the client's rules. An option
 * neither the route nor the document sets is not overridden: the client's own applies.
 */
function policyNormalizer(
  rules: Readonly<Record<string, OptionRule>>,
  raw: Readonly<Record<string, unknown>>,
  top: Readonly<Record<string, unknown>>,
): PolicyNormalizer {
  return (options, at): RoutePolicy => {
    let timeout: CallTimeout | null = null;
    let overrides: Record<string, unknown> | null = null;
    for (const key of ROUTE_POLICY_KEYS) {
      const own = options[key];
      if (own === undefined && top[key] === undefined) continue;
      const path = own === undefined ? key : at === "" ? key : `${at}.${key}`;
      for (const part of [own, top[key]]) {
        if (key === "retry" && isPlainObject(part) && part.budget !== undefined)
          fail(`${path}.budget`, part.budget, "no budget here: the retry budget is the client's, set in code");
        if (key === "timeout" && isPlainObject(part) && part.header !== undefined)
          fail(`${path}.header`, part.header, "no header here: the deadline header is the client's, set in code");
      }
      const rule = rules[key] as OptionRule;
      const value = rule.normalize(merge(merge(raw[key], top[key], rule), own, rule), path);
      if (key === "timeout") {
        const t = value as TimeoutConfig;
        timeout = Object.freeze({
          attemptMs: t.attemptMs === Infinity ? false : t.attemptMs,
          totalMs: t.totalMs === Infinity ? false : t.totalMs,
        });
      } else (overrides ??= {})[key] = value;
    }
    return Object.freeze({ timeout, overrides: overrides === null ? null : Object.freeze(overrides) });
  };
}

/** `b` over `a` by the option's merge rule (as a client's option over a mesh's default). */
function merge(a: unknown, b: unknown, rule: OptionRule): unknown {
  if (b === undefined) return a;
  if (rule.merge === "shallow" && isPlainObject(a) && isPlainObject(b)) return { ...a, ...b };
  return b;
}

/**
 * A route table: one version of a client's routes, compiled once (matchers, cumulative weights,
 * one `CallRoute` decision per backend) and swapped whole when a new version applies — a call
 * reads the table once, so it keeps the version it started with for all of its attempts.
 *
 * Matching is first match wins, in order; a call no route takes gets the table's fallback (the
 * client's own endpoints, with the config document's top-level overrides if it has any). The
 * per-call work is the loop over the routes' matchers (a method set lookup, a path pattern, the
 * header and query tests a route has) and, for a split, one random number or one hash.
 */
import { hash32 } from "../core/hash.js";
import type { Random } from "../core/clock.js";
import { pathOnly } from "../core/path-pattern.js";
import type { CallRoute } from "../core/route.js";
import type { MeshRequest } from "../core/types.js";
import type { BackendConfig, MatchConfig, MirrorConfig, RouteConfig, RoutePolicy } from "./options.js";

/** One backend of a compiled route: its decision (shared by every call it takes) and its count. */
export interface BackendState {
  readonly config: BackendConfig;
  readonly decision: CallRoute;
  calls: number;
}

/** A mirror's counters. */
export interface MirrorState {
  readonly config: MirrorConfig;
  readonly decision: CallRoute;
  inflight: number;
  /** Copies sent. */
  sent: number;
  /** Copies answered with a status below 500. */
  ok: number;
  /** Copies that failed: an error, a timeout, or a 5xx. */
  failed: number;
  /** Not sent: `maxInFlight` copies were already out. */
  dropped: number;
  /** Not sent: the call's body is a stream, which cannot be read twice. */
  skipped: number;
}

export class CompiledRoute {
  readonly config: RouteConfig;
  readonly name: string;
  readonly backends: readonly BackendState[];
  /** Cumulative weights, normalized to end at 1. */
  readonly #bounds: Float64Array;
  readonly mirror: MirrorState | null;
  calls = 0;
  delayed = 0;
  aborted = 0;

  constructor(config: RouteConfig, mirrorPolicy: RoutePolicy) {
    this.config = config;
    this.name = config.name;
    this.matches = compileMatch(config.match);
    const overrides = config.policy.overrides;
    this.backends = config.backends.map((b) => ({
      config: b,
      decision: Object.freeze({
        name: config.name,
        backend: b.label,
        subset: b.subset,
        overrides,
        classifier: config.classifier,
      }),
      calls: 0,
    }));
    const total = config.backends.reduce((sum, b) => sum + b.weight, 0);
    this.#bounds = new Float64Array(config.backends.length);
    let sum = 0;
    config.backends.forEach((b, i) => {
      sum += b.weight;
      this.#bounds[i] = sum / total;
    });
    this.#bounds[this.#bounds.length - 1] = 1;
    const m = config.mirror;
    this.mirror =
      m === null
        ? null
        : {
            config: m,
            decision: Object.freeze({
              name: config.name,
              backend: `mirror:${m.target.label}`,
              subset: m.target.subset,
              // A copy is sent once: no retries, no hedges.
              overrides: mirrorPolicy.overrides,
              classifier: null,
            }),
            inflight: 0,
            sent: 0,
            ok: 0,
            failed: 0,
            dropped: 0,
            skipped: 0,
          };
  }

  /** True when this route takes `req`; `path` is its path without the query. */
  readonly matches: (req: MeshRequest, path: string) => boolean;

  /** The backend for `req`: by the sticky key's hash when there is one, else at random by weight. */
  pick(req: MeshRequest, random: Random): BackendState {
    const backends = this.backends;
    if (backends.length === 1) return backends[0] as BackendState;
    const key = stickyKey(req, this.config.sticky);
    // A key's point is fixed, and each backend holds one stretch of [0, 1): raising the last
    // backend's weight (a canary going 10 → 50 %) only moves keys onto it, never off it.
    const point = key === undefined ? random() : hash32(key) / 4294967296;
    const bounds = this.#bounds;
    for (let i = 0; i < bounds.length; i++) if (point < (bounds[i] as number)) return backends[i] as BackendState;
    return backends[backends.length - 1] as BackendState;
  }
}

export class RouteTable {
  /** Where this version came from: `"code"`, or the config source's name. */
  readonly source: string;
  /** `"code"`, or the config source's version (`"rev 42"`). */
  readonly version: string;
  readonly routes: readonly CompiledRoute[];
  /** Takes what no route takes: the client's endpoints, with the document's top-level overrides. */
  readonly fallback: CompiledRoute;
  /** Some route matches on the path: the query is cut off once per call. */
  readonly #byPath: boolean;
  /**
   * With many routes, a trie of their literal leading path segments: walking a path down it ends
   * at the node whose `routes` are the only ones that can take it, in table order. Null for a
   * short table, which is tried whole.
   */
  readonly #index: SegmentNode | null;

  constructor(
    source: string,
    version: string,
    routes: readonly RouteConfig[],
    fallback: RouteConfig,
    mirrorPolicy: RoutePolicy,
  ) {
    this.source = source;
    this.version = version;
    this.routes = routes.map((r) => new CompiledRoute(r, mirrorPolicy));
    this.fallback = new CompiledRoute(fallback, mirrorPolicy);
    this.#byPath = routes.some((r) => r.match.path !== null);
    this.#index = this.routes.length >= INDEX_FROM ? segmentTrie(this.routes) : null;
  }

  /** The first route that takes `req`, or the fallback. */
  match(req: MeshRequest): CompiledRoute {
    const path = this.#byPath ? pathOnly(req.path) : req.path;
    const routes = this.#index === null ? this.routes : candidates(this.#index, path);
    for (let i = 0; i < routes.length; i++) {
      const route = routes[i] as CompiledRoute;
      if (route.matches(req, path)) return route;
    }
    return this.fallback;
  }
}

type Test = (req: MeshRequest, path: string) => boolean;

/** Tables of this many routes or more are indexed by their literal path segments. */
const INDEX_FROM = 8;

interface SegmentNode {
  /** The routes a path that stops at this node may match: those whose literal segments end here or above, in table order. */
  readonly routes: readonly CompiledRoute[];
  readonly children: ReadonlyMap<string, SegmentNode>;
}

function segmentTrie(routes: readonly CompiledRoute[]): SegmentNode {
  const build = (prefix: readonly string[]): SegmentNode => {
    const depth = prefix.length;
    const within = (own: readonly string[], n: number): boolean => {
      for (let i = 0; i < n; i++) if (own[i] !== prefix[i]) return false;
      return true;
    };
    // A route may take a path at this node when its literal segments are a prefix of the node's.
    const here = routes.filter(
      (r) => r.config.match.segments.length <= depth && within(r.config.match.segments, r.config.match.segments.length),
    );
    const children = new Map<string, SegmentNode>();
    for (const r of routes) {
      const own = r.config.match.segments;
      const next = own[depth];
      if (next !== undefined && within(own, depth) && !children.has(next)) children.set(next, build([...prefix, next]));
    }
    return { routes: here, children };
  };
  return build([]);
}

/** Walks `path`'s segments down the trie as far as it goes: the routes of the node it stops at. */
function candidates(root: SegmentNode, path: string): readonly CompiledRoute[] {
  let node = root;
  let from = 1;
  while (node.children.size > 0) {
    const slash = path.indexOf("/", from);
    const child = node.children.get(slash === -1 ? path.slice(from) : path.slice(from, slash));
    if (child === undefined) break;
    node = child;
    if (slash === -1) break;
    from = slash + 1;
  }
  return node.routes;
}

/**
 * One function per route that runs only the tests the route has, cheapest first (the method, a
 * string comparison; then the path): a table of 20 routes is 20 of these per call that reaches
 * the last one.
 */
function compileMatch(match: MatchConfig): Test {
  const tests: Test[] = [];
  const { methods, path: pattern, headers, query } = match;
  if (methods !== null) {
    const [only] = methods;
    tests.push(methods.size === 1 ? (req) => req.method === only : (req) => methods.has(req.method));
  }
  if (pattern !== null) tests.push((_req, path) => pattern.matches(path));
  for (const [name, test] of headers) tests.push((req) => test(headerValue(req.headers[name])));
  if (query.length > 0) {
    tests.push((req) => {
      const q = req.path.indexOf("?");
      const params = new URLSearchParams(q === -1 ? "" : req.path.slice(q + 1));
      for (const [name, test] of query) if (!test(params.get(name) ?? undefined)) return false;
      return true;
    });
  }
  const [a, b] = tests;
  if (a === undefined) return () => true;
  if (b === undefined) return a;
  if (tests.length === 2) return (req, path) => a(req, path) && b(req, path);
  return (req, path) => tests.every((test) => test(req, path));
}

function headerValue(value: string | readonly string[] | undefined): string | undefined {
  return value === undefined || typeof value === "string" ? value : value.join(",");
}

function stickyKey(req: MeshRequest, sticky: RouteConfig["sticky"]): string | undefined {
  if (sticky === null) return undefined;
  if ("header" in sticky) return headerValue(req.headers[sticky.header]);
  return cookieValue(headerValue(req.headers.cookie), sticky.cookie);
}

/** The value of cookie `name` in a `Cookie` header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

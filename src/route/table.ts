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
  /** Not sent: the target had no ready endpoint (its subset is empty or ejected, its service has no client). */
  unavailable: number;
}

export class CompiledRoute {
  readonly config: RouteConfig;
  readonly name: string;
  readonly backends: readonly BackendState[];
  /** Cumulative weights, normalized to end at 1. */
  readonly #bounds: Float64Array;
  readonly mirror: MirrorState | null;
  /** Nothing to do but record the decision: no timeouts, idempotency, faults or mirror of its own. */
  readonly plain: boolean;
  calls = 0;
  delayed = 0;
  aborted = 0;

  constructor(config: RouteConfig, mirrorPolicy: RoutePolicy) {
    this.config = config;
    this.name = config.name;
    this.matches = compileMatch(config.match, true);
    this.matchesBesidesPath = compileMatch(config.match, false);
    this.plain =
      config.policy.timeout === null && config.idempotent === null && config.fault === null && config.mirror === null;
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
            unavailable: 0,
          };
  }

  /** True when this route takes `req`; `path` is its path without the query. */
  readonly matches: (req: MeshRequest, path: string) => boolean;
  /** `matches` without the path test: for an index that placed the route by its path already. */
  readonly matchesBesidesPath: (req: MeshRequest, path: string) => boolean;

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
  /**
   * `"code"`, or the config source's version (`"rev 42"`). Re-labelled in place when a new
   * version brings an equal document: the routes, and their counts, stay.
   */
  version: string;
  /** Wall-clock ms when this version was compiled: its routes' counts start here. */
  readonly since: number;
  readonly routes: readonly CompiledRoute[];
  /** Takes what no route takes: the client's endpoints, with the document's top-level overrides. */
  readonly fallback: CompiledRoute;
  /** Some route matches on the path: the query is cut off once per call. */
  readonly #byPath: boolean;
  /**
   * With many routes, a trie of their path patterns' segments (a parameter is a child of its own)
   * and the routes no path places; null for a short table, which is tried whole.
   */
  readonly #index: SegmentIndex | null;

  constructor(
    source: string,
    version: string,
    since: number,
    routes: readonly RouteConfig[],
    fallback: RouteConfig,
    mirrorPolicy: RoutePolicy,
  ) {
    this.source = source;
    this.version = version;
    this.since = since;
    this.routes = routes.map((r) => new CompiledRoute(r, mirrorPolicy));
    this.fallback = new CompiledRoute(fallback, mirrorPolicy);
    this.#byPath = routes.some((r) => r.match.path !== null);
    this.#index = this.routes.length >= INDEX_FROM ? new SegmentIndex(this.routes) : null;
  }

  /** The first route that takes `req`, or the fallback. */
  match(req: MeshRequest): CompiledRoute {
    const path = this.#byPath ? pathOnly(req.path) : req.path;
    if (this.#index !== null) return this.#index.match(req, path) ?? this.fallback;
    const routes = this.routes;
    for (let i = 0; i < routes.length; i++) {
      const route = routes[i] as CompiledRoute;
      if (route.matches(req, path)) return route;
    }
    return this.fallback;
  }
}

/** Tables of this many routes or more are indexed by their path patterns' segments. */
const INDEX_FROM = 8;

interface Ranked {
  readonly route: CompiledRoute;
  /** Its place in the table: the lower, the earlier it is tried. */
  readonly rank: number;
}

interface SegmentNode {
  /** Literal children: `names[i]` leads to `nodes[i]` (a short list: compared in place, no substring made). */
  readonly names: string[];
  readonly nodes: SegmentNode[];
  /** The same children by name, for a node with many (a lookup beats comparing each). */
  wide: Map<string, SegmentNode> | null;
  /** The child for a parameter segment (`:id`): any one non-empty segment. */
  param: SegmentNode | null;
  /** Routes whose pattern ends exactly here, in table order. */
  readonly exact: Ranked[];
  /** Routes whose pattern is a prefix ending here (`"/static/*"`): they take this node and all under it. */
  readonly prefix: Ranked[];
}

const node = (): SegmentNode => ({ names: [], nodes: [], wide: null, param: null, exact: [], prefix: [] });

/** Children past this many are looked up by name. */
const WIDE_FROM = 8;

/**
 * A router's trie: each route sits at the node its pattern's segments lead to. Matching walks the
 * path's segments down every branch that fits (a literal child, and a parameter child for a
 * non-empty segment), and the winner is the matching route with the lowest rank (table order) —
 * first match wins, as if every route were tried in order, but only the routes whose patterns fit
 * the path are tried. Routes no pattern places (headers only, `{ regex }`…) are tried in order too,
 * only while they rank above the best so far. Nothing is allocated per call.
 */
class SegmentIndex {
  readonly #root = node();
  readonly #unplaced: Ranked[] = [];
  /** The best so far in the match running now (matching is synchronous). */
  #best: CompiledRoute | null = null;
  #bestRank = Infinity;

  constructor(routes: readonly CompiledRoute[]) {
    routes.forEach((route, rank) => {
      const shape = route.config.match.shape;
      if (shape === null) return void this.#unplaced.push({ route, rank });
      let at = this.#root;
      for (const segment of shape.segments) {
        if (segment === ":") at = at.param ??= node();
        else {
          const i = at.names.indexOf(segment);
          if (i !== -1) at = at.nodes[i] as SegmentNode;
          else {
            const child = node();
            at.names.push(segment);
            at.nodes.push(child);
            at = child;
          }
        }
      }
      (shape.prefix ? at.prefix : at.exact).push({ route, rank });
    });
    const widen = (at: SegmentNode): void => {
      if (at.names.length >= WIDE_FROM)
        at.wide = new Map(at.names.map((name, i) => [name, at.nodes[i] as SegmentNode]));
      at.nodes.forEach(widen);
      if (at.param !== null) widen(at.param);
    };
    widen(this.#root);
  }

  /** The first route (in table order) that takes `req`, or null. */
  match(req: MeshRequest, path: string): CompiledRoute | null {
    this.#best = null;
    this.#bestRank = Infinity;
    this.#walk(this.#root, req, path, 1);
    for (const { route, rank } of this.#unplaced) {
      if (rank > this.#bestRank) break;
      if (route.matches(req, path)) return route;
    }
    return this.#best;
  }

  /** Visits `at` with the path's segments from offset `from` still to walk (past the end: none). */
  #walk(at: SegmentNode, req: MeshRequest, path: string, from: number): void {
    if (at.prefix.length > 0) this.#consider(at.prefix, req, path);
    if (from > path.length) {
      if (at.exact.length > 0) this.#consider(at.exact, req, path);
      return;
    }
    const slash = path.indexOf("/", from);
    const end = slash === -1 ? path.length : slash;
    const next = end + 1;
    const { names, nodes, wide } = at;
    if (wide !== null) {
      const child = wide.get(path.slice(from, end));
      if (child !== undefined) this.#walk(child, req, path, next);
    } else {
      for (let i = 0; i < names.length; i++) {
        const name = names[i] as string;
        if (name.length === end - from && path.startsWith(name, from)) {
          this.#walk(nodes[i] as SegmentNode, req, path, next);
          break;
        }
      }
    }
    if (at.param !== null && end > from) this.#walk(at.param, req, path, next);
  }

  #consider(candidates: readonly Ranked[], req: MeshRequest, path: string): void {
    for (const { route, rank } of candidates) {
      // In table order: the first that matches here is the best this node has.
      if (rank >= this.#bestRank) return;
      // Its place in the trie matched its path already.
      if (route.matchesBesidesPath(req, path)) {
        this.#best = route;
        this.#bestRank = rank;
        return;
      }
    }
  }
}

type Test = (req: MeshRequest, path: string) => boolean;

/**
 * One function per route that runs only the tests the route has, cheapest first (the method, a
 * string comparison; then the path).
 */
function compileMatch(match: MatchConfig, withPath: boolean): Test {
  const tests: Test[] = [];
  const { methods, path: pattern, headers, query } = match;
  if (methods !== null) {
    const [only] = methods;
    tests.push(methods.size === 1 ? (req) => req.method === only : (req) => methods.has(req.method));
  }
  if (pattern !== null && withPath) tests.push((_req, path) => pattern.matches(path));
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
  return (req, path) => {
    for (const test of tests) if (!test(req, path)) return false;
    return true;
  };
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

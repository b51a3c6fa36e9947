/**
 * What routing decides for a call, as the layers below the route layer read it. The route layer
 * (`route/layer.ts`) matches a call once, picks its backend and records the decision in
 * `CallState.route`; the balance layer reads its endpoint subset, the retry layer its retry and
 * hedge overrides, the classifier its route's classifier — so a route changes a call's policy
 * without any layer knowing about routes, and a call keeps the decision (and the config version
 * it came from) for all of its attempts.
 */
import type { Classifier } from "./classifier.js";
import type { Endpoint } from "./endpoint.js";

/** Endpoints selected by their discovery metadata: every key present, with the same value (Envoy's subsets). */
export interface EndpointSubset {
  /** Canonical label, e.g. `"version=v2"` (keys sorted): names the subset in snapshots and keys per-subset state. */
  readonly key: string;
  readonly match: Readonly<Record<string, string>>;
}

/**
 * One route's decision for one of its backends: made once when a route table is built and shared
 * by every call that takes it (nothing is allocated per call).
 */
export interface CallRoute {
  /** The route's label (its `name`, or its path pattern): bounded cardinality, safe for metrics. */
  readonly name: string;
  /** The backend's label: `"self"` (the client's endpoints), a subset's key (`"version=v2"`) or `"service:catalog-v2"`. */
  readonly backend: string;
  /** The endpoints this call may go to; null for every endpoint of the client. */
  readonly subset: EndpointSubset | null;
  /**
   * Client options the route (or the dynamic config) overrides for this call, normalized as the
   * client's own, by option key (`retry`, `hedge`); null when none. Read by the layer that owns the
   * option. Timeouts travel in `MeshRequest.timeout` instead, as a call's own do.
   */
  readonly overrides: Readonly<Record<string, unknown>> | null;
  /** The route's classifier, used instead of the client's for this call; null for the client's. */
  readonly classifier: Classifier | null;
}

/**
 * Builds a subset from metadata, or returns null for an empty one (every endpoint).
 * @example subsetOf({ version: "v2" }) // { key: "version=v2", match: { version: "v2" } }
 */
export function subsetOf(match: Readonly<Record<string, string>> | undefined): EndpointSubset | null {
  if (match === undefined) return null;
  const keys = Object.keys(match).sort();
  if (keys.length === 0) return null;
  return Object.freeze({
    key: keys.map((k) => `${k}=${match[k]}`).join(","),
    match: Object.freeze({ ...match }),
  });
}

/** True when `endpoint`'s metadata carries every key of the subset with the same value. */
export function inSubset(endpoint: Endpoint, subset: EndpointSubset): boolean {
  const metadata = endpoint.metadata;
  for (const key in subset.match) if (metadata[key] !== subset.match[key]) return false;
  return true;
}

/**
 * The client's classifier, deferring to the route's where a call's route has one. Used only by
 * clients with routes: one property read per classification.
 */
export function routedClassifier(base: Classifier): Classifier {
  return (req, res, error) => (req.call.route?.classifier ?? base)(req, res, error);
}

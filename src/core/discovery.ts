/**
 * The resolver model: a resolver publishes endpoint sets and answers `snapshot()`. Discovery
 * factories (`staticDiscovery(urls)`, …) are descriptions; each mesh creates (and shares) the
 * resolvers they describe, starts them lazily and stops them on close.
 */
import type { EndpointInfo } from "./endpoint.js";
import type { Clock, Random } from "./clock.js";
import type { Disposer } from "./types.js";

export interface ResolverSnapshot {
  readonly source: string;
  readonly endpoints: readonly EndpointInfo[];
  /** Clock time of the last successful answer (undefined before the first). */
  readonly updatedAt: number | undefined;
  /** Set while the source is failing and the last good set keeps serving. */
  readonly stale: boolean;
  readonly lastError: string | undefined;
}

export interface Resolver {
  /** Calls `listener` with the current set (when there is one) and with every later change. */
  subscribe(listener: (endpoints: readonly EndpointInfo[]) => void): Disposer;
  snapshot(): ResolverSnapshot;
  /** Calls `listener` when the source turns stale or fresh, or its error changes. Optional. */
  onState?(listener: (snapshot: ResolverSnapshot) => void): Disposer;
  close(): Promise<void>;
}

export interface ResolverContext {
  readonly clock: Clock;
  /** Jitter for retry backoff. */
  readonly random: Random;
  /** Reports a rejected input or a failing source; the resolver keeps its last good set. */
  readonly warn: (message: string) => void;
}

export interface Discovery {
  /** Identifies the source: resolvers with the same key are shared inside a mesh. */
  readonly key: string;
  create(context: ResolverContext): Resolver;
}

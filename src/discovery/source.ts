/**
 * The live discovery sources' common base: `core/source.ts`'s `WatchedSource` over endpoint sets,
 * with discovery's rules on top. Everything `WatchedSource` guarantees holds (the last good set
 * keeps serving through a failure, stale, one warning per distinct error, full-jitter backoff,
 * lazy start, `close()`), and:
 *
 * - only a non-empty answer replaces the set: an empty answer while a set serves is reported as
 *   a failure — a deleted record or a wiped prefix is far more often an accident than a fleet
 *   scaled to zero, and the outlier detector and breakers handle dead endpoints anyway;
 * - two sets are the same when they hold the same endpoints in any order (`sameSet`), so
 *   balancers keep their state over a reordered answer;
 * - warnings read "weft discovery <source>: …".
 */
import type { Resolver, ResolverContext, ResolverSnapshot } from "../core/discovery.js";
import type { EndpointInfo } from "../core/endpoint.js";
import { WatchedSource, type SourceBackoff } from "../core/source.js";

export abstract class SourceResolver
  extends WatchedSource<readonly EndpointInfo[], ResolverSnapshot>
  implements Resolver
{
  constructor(source: string, context: ResolverContext, backoff?: SourceBackoff) {
    super({ source, label: "weft discovery", context, backoff });
  }

  snapshot(): ResolverSnapshot {
    const { source, value, updatedAt, stale, lastError } = this.state();
    return { source, endpoints: value ?? [], updatedAt, stale, lastError };
  }

  /**
   * A valid answer from the backend. Replaces the set when it differs; an empty answer while a
   * set serves is a failure (see the file comment). Returns whether the answer was accepted.
   */
  protected override publish(endpoints: readonly EndpointInfo[], settled = true): boolean {
    if (this.closed) return false;
    if (endpoints.length === 0 && this.value !== undefined && this.value.length > 0) {
      this.failure("the answer has no endpoints", false);
      return false;
    }
    return super.publish(Object.freeze([...endpoints]), settled);
  }

  protected same(current: readonly EndpointInfo[], next: readonly EndpointInfo[]): boolean {
    return sameSet(current, next);
  }

  protected kept(endpoints: readonly EndpointInfo[] | undefined): string {
    return endpoints === undefined
      ? "no endpoints yet"
      : `keeping the last good set of ${endpoints.length} endpoint(s)`;
  }
}

/** Same endpoints with the same weight, zone and metadata, in any order. */
export function sameSet(a: readonly EndpointInfo[], b: readonly EndpointInfo[]): boolean {
  if (a.length !== b.length) return false;
  const key = (e: EndpointInfo): string =>
    `${e.url}\u0000${e.weight ?? 1}\u0000${e.zone ?? ""}\u0000${JSON.stringify(e.metadata ?? {})}`;
  const left = new Set(a.map(key));
  return b.every((e) => left.has(key(e)));
}

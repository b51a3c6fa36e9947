/**
 * What the file and etcd config watches share: `core/source.ts`'s rules (the last good version
 * keeps serving through a failure, stale, one warning per distinct error, backoff, lazy start,
 * `close()`) over config versions, and the config rules on top:
 *
 * - a text that does not parse is a failure (warning naming the version and the line/column,
 *   stale) but publishes nothing: the last good version keeps serving;
 * - a document removed after a version was published is a failure too (an accident far more often
 *   than a decision to drop every override: the sources report it with `failure`); removed before
 *   any was published, it is simply no config yet (`healthy`);
 * - the same version publishes nothing (a file rewritten with the same text, a re-read of the
 *   same revision); a new version with an equal document is published, and the client takes its
 *   label without rebuilding its routes.
 */
import type { ConfigVersion, ConfigWatch, ConfigWatchContext, ConfigWatchSnapshot } from "../core/config-source.js";
import { WatchedSource, type SourceBackoff } from "../core/source.js";
import { parseConfigText } from "./parse.js";

/**
 * A config watch: a subclass reads its backend and calls `offer(text, version)` for each
 * document read, `failure` when the backend fails or the document went away, `healthy` when
 * there is no document yet.
 * @example this.offer(kv.value, `rev ${kv.modRevision}`);
 */
export abstract class ConfigWatchBase extends WatchedSource<ConfigVersion, ConfigWatchSnapshot> implements ConfigWatch {
  constructor(source: string, context: ConfigWatchContext, backoff?: SourceBackoff) {
    super({ source, label: "weft config", context, backoff });
  }

  snapshot(): ConfigWatchSnapshot {
    const { source, value, updatedAt, stale, lastError } = this.state();
    return { source, version: value?.version, updatedAt, stale, lastError };
  }

  protected same(current: ConfigVersion, next: ConfigVersion): boolean {
    // A new version is published even when its document is equal (a put of the same value is a
    // new revision the operator waits to see applied); the client re-labels rather than rebuilds.
    return current.version === next.version;
  }

  protected kept(current: ConfigVersion | undefined): string {
    return current === undefined
      ? "no version yet: the client's own options serve"
      : `keeping the last good version ${current.version}`;
  }

  /** A read of `version`: published when it parses and differs; a failure (no retry) when it does not parse. */
  protected offer(text: string, version: string, settled = true): void {
    let document: unknown;
    try {
      document = parseConfigText(text, version);
    } catch (error) {
      this.failure(error, false);
      return;
    }
    this.publish(Object.freeze({ source: this.source, version, document: deepFreeze(document) }), settled);
  }
}

/** Listeners share one document: none may change it under the others. */
function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

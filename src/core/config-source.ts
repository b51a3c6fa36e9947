/**
 * The dynamic-config model: a config source (`fileConfig(path)`, `etcdConfig({ hosts, prefix })`)
 * is a description; each client watches its own service's document through it. A watch publishes
 * each new version of the document as read and parsed (JSON or YAML); the client validates it
 * completely (the same rules and messages as `createClient`) and applies it, or rejects it with a
 * warning and keeps the last good version. The source itself keeps the last good document when
 * its backend fails (stale, retried with backoff), as discovery does.
 */
import type { Clock, Random } from "./clock.js";
import type { Disposer } from "./types.js";

/** One version of a service's config document, as a source read it. */
export interface ConfigVersion {
  /** Where it came from, e.g. `etcd:/weft/config/catalog@http://127.0.0.1:2379` or `file:/etc/weft/catalog.yaml`. */
  readonly source: string;
  /** Identifies this version at its source: etcd's revision of the key (`"rev 42"`), a file's content hash (`"sha256:3f2a…"`). */
  readonly version: string;
  /** The parsed document, not yet validated (a JSON or YAML object). */
  readonly document: unknown;
}

export interface ConfigWatchSnapshot {
  readonly source: string;
  /** The version last published (the client may still have rejected it); undefined before the first. */
  readonly version: string | undefined;
  /** Clock time of the last successful read (undefined before the first). */
  readonly updatedAt: number | undefined;
  /** Set while the backend fails, or its document cannot be parsed or was deleted: the last good version keeps serving. */
  readonly stale: boolean;
  readonly lastError: string | undefined;
}

export interface ConfigWatch {
  /**
   * Calls `listener` with the current version (when there is one) and with every later version
   * (a new etcd revision, a file with other content), even when its document equals the last.
   */
  subscribe(listener: (version: ConfigVersion) => void): Disposer;
  snapshot(): ConfigWatchSnapshot;
  /** Calls `listener` when the watch turns stale or fresh, or its error changes. */
  onState(listener: (snapshot: ConfigWatchSnapshot) => void): Disposer;
  close(): Promise<void>;
}

export interface ConfigWatchContext {
  readonly clock: Clock;
  /** Jitter for retry backoff. */
  readonly random: Random;
  /** Reports a failing backend or an unparsable document; the last good version keeps serving. */
  readonly warn: (message: string) => void;
}

/** A description of where clients read their config documents: `fileConfig(…)`, `etcdConfig(…)`. */
export interface ConfigSource {
  /** Names the source kind and place (`file:/etc/weft/{service}.yaml`, `etcd:/weft/config/@http://…`), for messages. */
  readonly name: string;
  /** Starts watching `service`'s document. Throws `InvalidOptionsError` for a service name the source cannot use (in a key or a path). Documents are frozen. */
  watch(service: string, context: ConfigWatchContext): ConfigWatch;
}

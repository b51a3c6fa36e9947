/**
 * `etcdDiscovery({ hosts, prefix })` — endpoints from a key prefix on etcd v3, the registry many
 * meshes (and Kubernetes itself) are built on. Each key under the prefix is one endpoint; its value
 * is JSON: `{ "url": "http://10.0.0.7:8080", "weight"?: 2, "zone"?: "a", "metadata"?: { … } }`
 * (what `etcdRegistration` writes).
 *
 * The resolver keeps the prefix current with `etcd/list-watch.ts` (list, watch from the listing's
 * revision + 1, list again on compaction, a liveness probe beside the watch): a listing replaces a
 * key → endpoint map, each watch batch updates it, and the valid endpoints are published. A
 * malformed value is rejected with a warning naming the key and the value, and the other keys
 * keep serving. When the stream breaks or the probe fails, the last good set keeps serving, the
 * resolver turns stale, and after a backoff it lists and watches again.
 */
import type { Discovery, Resolver, ResolverContext } from "../core/discovery.js";
import type { EndpointInfo } from "../core/endpoint.js";
import { InvalidOptionsError } from "../core/errors.js";
import { checkSourceBackoff, type SourceBackoff } from "../core/source.js";
import { checkKeys, checkMs, describe, fail, isPlainObject } from "../core/validate.js";
import { EtcdClient, type EtcdEvent, type EtcdKeyValue } from "../etcd/client.js";
import { EtcdListWatch } from "../etcd/list-watch.js";
import { checkHosts, checkPrefix } from "../etcd/options.js";
import { SourceResolver } from "./source.js";
import { validateEndpoint } from "./static.js";

export interface EtcdDiscoveryOptions {
  /** etcd client URLs (the v3 JSON gateway), e.g. `["http://127.0.0.1:2379"]`; the next one is tried on a connection error. */
  readonly hosts: readonly string[];
  /** Key prefix; every key under it is one endpoint, e.g. `"/services/catalog/"`. */
  readonly prefix: string;
  /** Retry backoff while etcd fails. Default `{ baseMs: 200, maxMs: 10_000 }`, full jitter. */
  readonly backoff?: { readonly baseMs?: number; readonly maxMs?: number };
  /** Timeout of each call to etcd, ms. Default 5 000. */
  readonly requestTimeoutMs?: number;
  /** How often a watching resolver checks that etcd still answers, ms. Default 10 000. */
  readonly probeIntervalMs?: number;
}

const OPTION_KEYS = ["hosts", "prefix", "backoff", "requestTimeoutMs", "probeIntervalMs"];

/**
 * Discovers the endpoints registered under `prefix`. Resolvers are shared inside a mesh by
 * `key` (`etcd:<hosts>:<prefix>`). Throws `InvalidOptionsError` on bad options.
 * @example
 * const catalog = createClient({
 *   service: "catalog",
 *   discovery: etcdDiscovery({ hosts: ["http://127.0.0.1:2379"], prefix: "/services/catalog/" }),
 * });
 */
export function etcdDiscovery(options: EtcdDiscoveryOptions): Discovery {
  if (!isPlainObject(options))
    fail("etcdDiscovery", options, "{ hosts, prefix, backoff?, requestTimeoutMs?, probeIntervalMs? }");
  checkKeys(options, OPTION_KEYS, "etcdDiscovery");
  const hosts = checkHosts("etcdDiscovery.hosts", options.hosts);
  const prefix = checkPrefix("etcdDiscovery.prefix", options.prefix);
  const backoff = checkSourceBackoff("etcdDiscovery.backoff", options.backoff);
  const requestTimeoutMs =
    (checkMs("etcdDiscovery.requestTimeoutMs", options.requestTimeoutMs, false) as number | undefined) ?? 5_000;
  const probeIntervalMs =
    (checkMs("etcdDiscovery.probeIntervalMs", options.probeIntervalMs, false) as number | undefined) ?? 10_000;
  return {
    key: `etcd:${hosts.join(",")}:${prefix}`,
    create: (context: ResolverContext): Resolver =>
      new EtcdResolver({ hosts, prefix, backoff, requestTimeoutMs, probeIntervalMs }, context),
  };
}

interface ResolvedOptions {
  readonly hosts: readonly string[];
  readonly prefix: string;
  readonly backoff: SourceBackoff;
  readonly requestTimeoutMs: number;
  readonly probeIntervalMs: number;
}

/** One key's state: its endpoint, or undefined when its value was rejected. */
interface Entry {
  readonly endpoint: EndpointInfo | undefined;
  readonly modRevision: number;
}

class EtcdResolver extends SourceResolver {
  readonly #client: EtcdClient;
  readonly #loop: EtcdListWatch;
  #entries = new Map<string, Entry>();

  constructor(options: ResolvedOptions, context: ResolverContext) {
    super(`etcd:${options.prefix}@${options.hosts.join(",")}`, context, options.backoff);
    this.#client = new EtcdClient({ hosts: options.hosts, requestTimeoutMs: options.requestTimeoutMs });
    this.#loop = new EtcdListWatch({
      client: this.#client,
      range: { prefix: options.prefix },
      probeIntervalMs: options.probeIntervalMs,
      clock: context.clock,
      handlers: {
        onList: (kvs) => this.#list(kvs),
        onEvents: (events) => this.#apply(events),
        onSettled: () => this.settled(),
        onFailure: (error) => this.failure(error),
      },
    });
  }

  protected start(): void {
    this.#loop.start();
  }

  /** After a failure: list again and watch again (a watch resumed from an old revision may be compacted anyway). */
  protected override retry(): void {
    this.#loop.start();
  }

  protected async stop(): Promise<void> {
    this.#loop.stop();
    await this.#client.close();
  }

  #list(kvs: readonly EtcdKeyValue[]): void {
    const previous = this.#entries;
    this.#entries = new Map();
    for (const kv of kvs) {
      // A value rejected before and unchanged since is not reported again on every re-list.
      const known = previous.get(kv.key);
      const entry =
        known !== undefined && known.modRevision === kv.modRevision
          ? known
          : this.#parse(kv.key, kv.value, kv.modRevision, known);
      this.#entries.set(kv.key, entry);
    }
    // Not settled until the watch is up: a list that works beside a watch that keeps failing
    // must not reset the backoff on every round.
    this.#publishEntries(false);
  }

  #apply(events: readonly EtcdEvent[]): void {
    for (const event of events) {
      if (event.type === "DELETE") this.#entries.delete(event.key);
      else
        this.#entries.set(
          event.key,
          this.#parse(event.key, event.value, event.modRevision, this.#entries.get(event.key)),
        );
    }
    this.#publishEntries();
  }

  #publishEntries(settled = true): void {
    const keys = [...this.#entries.keys()].sort();
    const endpoints: EndpointInfo[] = [];
    for (const key of keys) {
      const endpoint = this.#entries.get(key)?.endpoint;
      if (endpoint !== undefined) endpoints.push(endpoint);
    }
    this.publish(endpoints, settled);
  }

  /**
   * A key's new value. A malformed value over a key that had a good one keeps the good one (a
   * truncated or half-migrated write must not drain a live instance); only a delete or the
   * lease's expiry removes it.
   */
  #parse(key: string, value: string, modRevision: number, previous: Entry | undefined): Entry {
    try {
      return { endpoint: parseEndpointValue(value), modRevision };
    } catch (error) {
      const kept = previous?.endpoint;
      const why = error instanceof Error ? error.message : String(error);
      this.reject(
        `key ${key} value`,
        value,
        kept === undefined ? why : `${why}; the key keeps its last good endpoint ${kept.url}`,
      );
      return { endpoint: kept, modRevision };
    }
  }
}

/**
 * Parses one etcd value into an endpoint; throws an Error saying why it is unusable. Unknown
 * fields are ignored, so registrars may add their own.
 * @example parseEndpointValue('{"url":"http://127.0.0.1:8081","weight":2}') // { url, weight: 2 }
 */
export function parseEndpointValue(value: string): EndpointInfo {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (error) {
    throw new Error(
      `not JSON (${error instanceof Error ? error.message : String(error)}); expected { "url": "http://host:port", "weight"?, "zone"?, "metadata"? }`,
      { cause: error },
    );
  }
  if (!isPlainObject(parsed))
    throw new Error(`expected a JSON object { "url": "http://host:port", "weight"?, "zone"?, "metadata"? }`);
  return checkEndpoint(parsed, "value");
}

/** Checks `{ url, weight?, zone?, metadata? }`; throws InvalidOptionsError for `option`, saying `where`. */
export function checkEndpoint(value: Record<string, unknown>, where: string, option = "discovery"): EndpointInfo {
  const { url, weight, zone, metadata } = value;
  try {
    validateEndpoint({ url: url as string, weight: weight as number | undefined }, where);
  } catch (error) {
    throw error instanceof InvalidOptionsError ? new InvalidOptionsError(option, error.message) : error;
  }
  if (zone !== undefined && (typeof zone !== "string" || zone === ""))
    throw new InvalidOptionsError(option, `${where}: zone must be a non-empty string, got ${describe(zone)}`);
  if (
    metadata !== undefined &&
    !(isPlainObject(metadata) && Object.values(metadata).every((v) => typeof v === "string"))
  ) {
    throw new InvalidOptionsError(option, `${where}: metadata must be an object of strings, got ${describe(metadata)}`);
  }
  return Object.freeze({
    url: url as string,
    ...(weight === undefined ? {} : { weight: weight as number }),
    ...(zone === undefined ? {} : { zone }),
    ...(metadata === undefined ? {} : { metadata: Object.freeze({ ...(metadata as Record<string, string>) }) }),
  });
}

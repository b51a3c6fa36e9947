/**
 * `etcdConfig({ hosts, prefix })` — each service's config document (JSON or YAML) as the value of
 * one etcd key, `prefix + service`, pushed to the client by a watch within milliseconds of a put.
 *
 * The watch follows exactly that key, not a prefix: `<prefix>catalog-v2` is another service, and
 * `<prefix>.meta/…` and `<prefix>.history/…` (what a CLI keeps beside the documents) are nobody's.
 * `etcd/list-watch.ts` keeps it current: read, watch from the read's revision + 1, read again on
 * compaction, a liveness probe beside the one-way watch stream. A version is the key's revision
 * (`rev 42`).
 *
 * An absent key is normal (no config for this service yet): nothing is published, no warning.
 * A value that does not parse, or the key deleted after a version was published, turns the watch
 * stale with a warning and the last good version keeps serving; a good put brings it back. When
 * etcd fails (down, killed, frozen: the stream breaks or the probe fails) the watch turns stale
 * with a warning and retries with backoff; the read after recovery publishes the current document
 * if it differs.
 */
import type { ConfigSource, ConfigWatch, ConfigWatchContext } from "../core/config-source.js";
import { checkSourceBackoff, type SourceBackoff } from "../core/source.js";
import { checkKeys, checkMs, fail, isPlainObject } from "../core/validate.js";
import { EtcdClient, type EtcdKeyValue } from "../etcd/client.js";
import { EtcdListWatch } from "../etcd/list-watch.js";
import { checkHosts, checkPrefix } from "../etcd/options.js";
import { checkServiceName } from "./service.js";
import { ConfigWatchBase } from "./watch.js";

export interface EtcdConfigOptions {
  /** etcd client URLs (the v3 JSON gateway), e.g. `["http://127.0.0.1:2379"]`; the next one is tried on a connection error. */
  readonly hosts: readonly string[];
  /** Key prefix; a service's document is the value of `prefix + service`. Default `"/weft/config/"`. */
  readonly prefix?: string;
  /** Retry backoff while etcd fails. Default `{ baseMs: 200, maxMs: 10_000 }`, full jitter. */
  readonly backoff?: { readonly baseMs?: number; readonly maxMs?: number };
  /** Timeout of each call to etcd, ms. Default 5 000. */
  readonly requestTimeoutMs?: number;
  /** How often a watch checks that etcd still answers, ms. Default 10 000. */
  readonly probeIntervalMs?: number;
}

const OPTION_KEYS = ["hosts", "prefix", "backoff", "requestTimeoutMs", "probeIntervalMs"];
const DEFAULT_PREFIX = "/weft/config/";

interface Settings {
  readonly hosts: readonly string[];
  readonly backoff: SourceBackoff;
  readonly requestTimeoutMs: number;
  readonly probeIntervalMs: number;
}

/**
 * Config documents from etcd, one key per service. Throws `InvalidOptionsError` on bad options;
 * `watch(service)` throws it when the service name does not match /^[A-Za-z0-9][A-Za-z0-9._-]*$/
 * (it becomes part of the key).
 * @example
 * const mesh = createMesh({ defaults: { configSource: etcdConfig({ hosts: ["http://127.0.0.1:2379"] }) } });
 * // the catalog client follows /weft/config/catalog:
 * //   etcdctl put /weft/config/catalog "$(cat catalog.yaml)"
 */
export function etcdConfig(options: EtcdConfigOptions): ConfigSource {
  if (!isPlainObject(options))
    fail("etcdConfig", options, "{ hosts, prefix?, backoff?, requestTimeoutMs?, probeIntervalMs? }");
  checkKeys(options, OPTION_KEYS, "etcdConfig");
  const hosts = checkHosts("etcdConfig.hosts", options.hosts);
  const prefix =
    options.prefix === undefined ? DEFAULT_PREFIX : checkPrefix("etcdConfig.prefix", options.prefix, DEFAULT_PREFIX);
  const settings: Settings = Object.freeze({
    hosts,
    backoff: checkSourceBackoff("etcdConfig.backoff", options.backoff),
    requestTimeoutMs:
      (checkMs("etcdConfig.requestTimeoutMs", options.requestTimeoutMs, false) as number | undefined) ?? 5_000,
    probeIntervalMs:
      (checkMs("etcdConfig.probeIntervalMs", options.probeIntervalMs, false) as number | undefined) ?? 10_000,
  });
  return Object.freeze({
    name: `etcd:${prefix}@${hosts.join(",")}`,
    watch(service: string, context: ConfigWatchContext): ConfigWatch {
      return new EtcdConfigWatch(prefix + checkServiceName("etcdConfig", service), settings, context);
    },
  });
}

class EtcdConfigWatch extends ConfigWatchBase {
  readonly #client: EtcdClient;
  readonly #loop: EtcdListWatch;

  constructor(key: string, settings: Settings, context: ConfigWatchContext) {
    super(`etcd:${key}@${settings.hosts.join(",")}`, context, settings.backoff);
    this.#client = new EtcdClient({ hosts: settings.hosts, requestTimeoutMs: settings.requestTimeoutMs });
    this.#loop = new EtcdListWatch({
      client: this.#client,
      range: { key },
      probeIntervalMs: settings.probeIntervalMs,
      clock: context.clock,
      handlers: {
        // Not settled until the watch is up: a read that works beside a watch that keeps failing
        // must not reset the backoff on every round.
        onList: (kvs) => this.#read(kvs[0], false),
        // Only the key's last state counts: an intermediate value is never served, nor warned about.
        onEvents: (events) => {
          const last = events.at(-1);
          if (last !== undefined) this.#read(last.type === "DELETE" ? undefined : last, true);
        },
        onSettled: () => this.settled(),
        onFailure: (error) => this.failure(error),
      },
    });
  }

  protected start(): void {
    this.#loop.start();
  }

  /** After a failure: read and watch again (a watch resumed from an old revision may be compacted anyway). */
  protected override retry(): void {
    this.#loop.start();
  }

  protected async stop(): Promise<void> {
    this.#loop.stop();
    await this.#client.close();
  }

  #read(kv: EtcdKeyValue | undefined, settled: boolean): void {
    if (kv !== undefined) return this.offer(kv.value, `rev ${kv.modRevision}`, settled);
    if (this.value !== undefined) return this.failure("the key was deleted", false);
    this.healthy(settled);
  }
}

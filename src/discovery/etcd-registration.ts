/**
 * `etcdRegistration({ hosts, prefix, url })` — a service registers its own endpoint where
 * `etcdDiscovery` finds it. The key is written under a lease (etcd's heartbeat-backed TTL), so
 * an instance that crashes disappears by itself once the lease expires, and `close()` revokes
 * the lease so a clean shutdown disappears at once (no TTL wait, no stale endpoint to eject).
 *
 * The lease is kept alive every TTL/3 (as etcd's own clients do: two keep-alives may be lost
 * before the lease expires). A keep-alive that finds the lease gone (expired during an outage,
 * or revoked by someone) grants a new one and writes the key again; after etcd was unreachable
 * the key is written again too, in case it was deleted meanwhile. Timers are unref'd: a
 * registration never keeps a process alive.
 */
import type { EndpointInfo } from "../core/endpoint.js";
import { checkKeys, checkMs, fail, isPlainObject } from "../core/validate.js";
import { EtcdClient } from "../etcd/client.js";
import { checkHosts, checkPrefix } from "../etcd/options.js";
import { checkEndpoint } from "./etcd.js";

export interface EtcdRegistrationOptions {
  /** etcd client URLs, e.g. `["http://127.0.0.1:2379"]`. */
  readonly hosts: readonly string[];
  /** The prefix `etcdDiscovery` watches, e.g. `"/services/catalog/"`. */
  readonly prefix: string;
  /** This instance's URL, as callers should reach it: `"http://10.0.0.7:8080"`. */
  readonly url: string;
  /** Lease TTL: how long a crashed instance stays listed. Default 10; an integer ≥ 1 (etcd may grant more). */
  readonly ttlSeconds?: number;
  readonly weight?: number;
  readonly zone?: string;
  readonly metadata?: Readonly<Record<string, string>>;
  /** The key. Default `prefix` + the URL's `host:port` (and path), URI-encoded: stable across restarts. */
  readonly key?: string;
  /** Receives warnings (etcd unreachable, lease lost, registered again). Default `process.emitWarning`. */
  readonly onWarning?: (message: string) => void;
  /** Timeout of each call to etcd, ms. Default 5 000. */
  readonly requestTimeoutMs?: number;
}

export interface EtcdRegistration {
  /** The key holding this endpoint. */
  readonly key: string;
  readonly url: string;
  /** Stops the keep-alive and revokes the lease: the key disappears at once. Idempotent. */
  close(): Promise<void>;
}

const OPTION_KEYS = [
  "hosts",
  "prefix",
  "url",
  "ttlSeconds",
  "weight",
  "zone",
  "metadata",
  "key",
  "onWarning",
  "requestTimeoutMs",
];

/**
 * Registers `url` under `prefix` and keeps it registered until `close()`. Rejects when etcd
 * cannot be reached for the first registration; throws `InvalidOptionsError` on bad options.
 * @example
 * const registration = await etcdRegistration({ hosts: ["http://127.0.0.1:2379"], prefix: "/services/catalog/", url: "http://127.0.0.1:8081" });
 * process.on("SIGTERM", () => void registration.close().then(() => server.close()));
 */
export async function etcdRegistration(options: EtcdRegistrationOptions): Promise<EtcdRegistration> {
  if (!isPlainObject(options))
    fail(
      "etcdRegistration",
      options,
      "{ hosts, prefix, url, ttlSeconds?, weight?, zone?, metadata?, key?, onWarning?, requestTimeoutMs? }",
    );
  checkKeys(options, OPTION_KEYS, "etcdRegistration");
  const hosts = checkHosts("etcdRegistration.hosts", options.hosts);
  const prefix = checkPrefix("etcdRegistration.prefix", options.prefix);
  const endpoint = checkEndpoint(
    { url: options.url, weight: options.weight, zone: options.zone, metadata: options.metadata },
    "etcdRegistration",
    "etcdRegistration",
  );
  const ttlSeconds = options.ttlSeconds ?? 10;
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1)
    fail("etcdRegistration.ttlSeconds", ttlSeconds, "an integer number of seconds ≥ 1");
  if (options.key !== undefined && (typeof options.key !== "string" || options.key === ""))
    fail("etcdRegistration.key", options.key, "a non-empty string");
  if (options.onWarning !== undefined && typeof options.onWarning !== "function")
    fail("etcdRegistration.onWarning", options.onWarning, "a function (message) => void");
  const requestTimeoutMs =
    (checkMs("etcdRegistration.requestTimeoutMs", options.requestTimeoutMs, false) as number | undefined) ?? 5_000;
  const key = options.key ?? prefix + defaultKeySuffix(endpoint.url);
  const warn = options.onWarning ?? ((message: string) => process.emitWarning(message, { code: "WEFT_WARNING" }));
  const registration = new Registration(new EtcdClient({ hosts, requestTimeoutMs }), key, endpoint, ttlSeconds, warn);
  try {
    await registration.register();
  } catch (error) {
    await registration.close();
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(
      `etcdRegistration: could not register ${endpoint.url} as ${key} at ${hosts.join(", ")}: ${reason}`,
      { cause: error },
    );
  }
  registration.keepAlive();
  return { key, url: endpoint.url, close: () => registration.close() };
}

/** `host:port` plus any base path, URI-encoded: one key per instance, the same after a restart. */
export function defaultKeySuffix(url: string): string {
  const parsed = new URL(url);
  const path = parsed.pathname === "/" ? "" : parsed.pathname.replace(/\/+$/, "");
  return encodeURIComponent(parsed.host + path);
}

class Registration {
  readonly #client: EtcdClient;
  readonly #key: string;
  readonly #value: string;
  readonly #ttlSeconds: number;
  readonly #warn: (message: string) => void;
  #lease: string | undefined;
  #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #tick: Promise<void> = Promise.resolve();
  #unreachable = false;
  #closed: Promise<void> | undefined;

  constructor(
    client: EtcdClient,
    key: string,
    endpoint: EndpointInfo,
    ttlSeconds: number,
    warn: (message: string) => void,
  ) {
    this.#client = client;
    this.#key = key;
    this.#value = JSON.stringify(endpoint);
    this.#ttlSeconds = ttlSeconds;
    this.#intervalMs = (ttlSeconds * 1000) / 3;
    this.#warn = warn;
  }

  /** Grants a lease and writes the key under it. */
  async register(): Promise<void> {
    const lease = await this.#client.leaseGrant(this.#ttlSeconds);
    this.#lease = lease.id;
    // etcd may grant more than asked (its minimum TTL follows the election timeout).
    this.#intervalMs = (Math.max(lease.ttlSeconds, 1) * 1000) / 3;
    await this.#client.put(this.#key, this.#value, lease.id);
  }

  keepAlive(): void {
    if (this.#closed !== undefined) return;
    // Real time: etcd counts the lease's TTL on its own clock, so the keep-alive must follow it.
    // eslint-disable-next-line no-restricted-globals
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#tick = this.#renew().finally(() => this.keepAlive());
    }, this.#intervalMs);
    this.#timer.unref();
  }

  async #renew(): Promise<void> {
    try {
      const ttl = this.#lease === undefined ? 0 : await this.#client.leaseKeepAlive(this.#lease);
      if (this.#closed !== undefined) return;
      if (ttl <= 0) {
        if (!this.#unreachable)
          this.#warn(`weft etcdRegistration: the lease of ${this.#key} is gone; registering again`);
        this.#lease = undefined;
        await this.register();
      } else if (this.#unreachable) {
        await this.#client.put(this.#key, this.#value, this.#lease);
      }
      if (this.#unreachable) this.#warn(`weft etcdRegistration: etcd answers again; ${this.#key} is registered`);
      this.#unreachable = false;
    } catch (error) {
      if (this.#closed !== undefined || this.#unreachable) return;
      this.#unreachable = true;
      const reason = error instanceof Error ? error.message : String(error);
      this.#warn(
        `weft etcdRegistration: could not keep ${this.#key} registered at ${this.#client.hosts.join(", ")}: ${reason}; retrying every ${Math.round(this.#intervalMs)} ms`,
      );
    }
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#tick;
    try {
      if (this.#lease !== undefined) await this.#client.leaseRevoke(this.#lease);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.#warn(
        `weft etcdRegistration: could not revoke the lease of ${this.#key} (${reason}); the key disappears when the lease expires`,
      );
    } finally {
      this.#lease = undefined;
      await this.#client.close();
    }
  }
}

/**
 * `dnsDiscovery({ name, type, port, servers })` — endpoints from the DNS a user already runs:
 * A/AAAA records with a fixed port (a Kubernetes headless Service), or SRV records that carry
 * their own port, priority and weight (Kubernetes named ports, Consul's DNS interface).
 *
 * Queries go through `node:dns` `promises.Resolver` — c-ares, on the event loop — never
 * `dns.lookup`: getaddrinfo runs on the libuv threadpool (4 threads shared with fs, zlib and
 * crypto, so a slow DNS server stalls file reads) and hides TTLs.
 *
 * Refresh follows the TTL clamped to [minRefreshMs, maxRefreshMs] (`dns-records.ts` has the
 * rules). Node exposes no TTL for SRV answers (`resolveSrv` returns none), so an SRV name is
 * refreshed after the smallest TTL of its targets' address records, within the same bounds.
 *
 * Failures follow the resolver model (`source.ts`): any query error (ENOTFOUND, ENODATA,
 * ETIMEOUT, ECONNREFUSED, SERVFAIL…) keeps the last good set, marks it stale and retries with
 * backoff. A malformed record (SRV port 0, target ".", an SRV target that does not resolve, an
 * unspecified address) is rejected with a warning and skipped while the rest serves; an SRV
 * target whose query fails for another reason (a timeout) fails the whole answer rather than
 * publishing a set that is only partly known.
 */
import { promises as dnsPromises } from "node:dns";
import { isIP } from "node:net";
import type { Discovery, Resolver, ResolverContext } from "../core/discovery.js";
import type { EndpointInfo } from "../core/endpoint.js";
import { checkKeys, checkMs, fail, isPlainObject } from "../core/validate.js";
import { checkSourceBackoff, type SourceBackoff } from "../core/source.js";
import { SourceResolver } from "./source.js";
import {
  addressEndpoints,
  checkAddress,
  checkSrvRecord,
  describeSrv,
  refreshDelayMs,
  srvEndpoints,
  srvPriorityGroups,
  type ResolvedSrv,
  type TtlAddress,
} from "./dns-records.js";

export interface DnsDiscoveryOptions {
  /** The name to query, e.g. `catalog.default.svc.cluster.local` or `_http._tcp.catalog.service.consul`. */
  readonly name: string;
  /** Record type. Default `"A"`. */
  readonly type?: "A" | "AAAA" | "SRV";
  /** Port of every endpoint: required for A/AAAA, not allowed for SRV (each record has its own). */
  readonly port?: number;
  /** DNS servers, `"ip"`, `"ip:port"` or `"[ipv6]:port"`. Default: the system's (`/etc/resolv.conf`). */
  readonly servers?: readonly string[];
  /** Scheme of the endpoint URLs. Default `"http"`. */
  readonly protocol?: "http" | "https";
  /** Floor of the TTL-driven refresh. Default 1000. */
  readonly minRefreshMs?: number;
  /** Ceiling of the TTL-driven refresh. Default 30 000. */
  readonly maxRefreshMs?: number;
  /** c-ares timeout of one try, integer ms. Default 2000. */
  readonly timeoutMs?: number;
  /** c-ares tries per server. Default 2. */
  readonly tries?: number;
  /** Retry backoff while the name fails (full jitter). Default `{ baseMs: 200, maxMs: 10_000 }`. */
  readonly backoff?: Partial<SourceBackoff>;
}

type RecordType = "A" | "AAAA" | "SRV";

interface DnsConfig {
  readonly name: string;
  readonly type: RecordType;
  readonly port: number | undefined;
  readonly servers: readonly string[];
  readonly protocol: "http" | "https";
  readonly minRefreshMs: number;
  readonly maxRefreshMs: number;
  readonly timeoutMs: number;
  readonly tries: number;
  readonly backoff: SourceBackoff;
}

const KEYS = [
  "name",
  "type",
  "port",
  "servers",
  "protocol",
  "minRefreshMs",
  "maxRefreshMs",
  "timeoutMs",
  "tries",
  "backoff",
];

/**
 * Discovers endpoints through DNS. A/AAAA: one `http://ip:port` endpoint per address. SRV: one
 * `http://ip:srvPort` endpoint per target address of the lowest priority that resolves, weighted
 * by the SRV weight (weight 0: 1/100 of the group's smallest non-zero weight, or 1 when all are 0),
 * with `{ target, priority, srvWeight }` as metadata. Defaults: type "A", protocol "http",
 * refresh every TTL within [1000, 30 000] ms, 2000 ms × 2 tries per query, the system's servers.
 * Options fail here, with InvalidOptionsError naming the option. The key is
 * `dns:TYPE:name:port:servers:tuning`: clients of a mesh with the same source share one resolver.
 * @example dnsDiscovery({ name: "catalog.default.svc.cluster.local", port: 8080 })
 * @example dnsDiscovery({ name: "_http._tcp.catalog.test", type: "SRV", servers: ["127.0.0.1:5353"] })
 */
export function dnsDiscovery(options: DnsDiscoveryOptions): Discovery {
  const config = normalize(options);
  const { type, name, port, servers, protocol, minRefreshMs, maxRefreshMs, timeoutMs, tries, backoff } = config;
  const tuning = `${protocol}:${minRefreshMs}-${maxRefreshMs}:${timeoutMs}x${tries}:${backoff.baseMs}-${backoff.maxMs}`;
  return Object.freeze({
    key: `dns:${type}:${name.toLowerCase().replace(/\.$/, "")}:${port ?? ""}:${servers.join(",")}:${tuning}`,
    create: (context: ResolverContext): Resolver => new DnsResolver(config, context),
  });
}

interface Answer {
  readonly endpoints: readonly EndpointInfo[];
  readonly delayMs: number;
  /** Why an answer without endpoints is a failure. */
  readonly empty: string;
}

class DnsResolver extends SourceResolver {
  readonly #config: DnsConfig;
  readonly #dns: dnsPromises.Resolver;
  #inflight: Promise<void> | undefined;
  /** Rejections warned about in the last answer: a malformed record warns once, not every refresh. */
  #warned = new Set<string>();

  constructor(config: DnsConfig, context: ResolverContext) {
    const at = config.servers.length > 0 ? ` @${config.servers.join(",")}` : "";
    super(`dns:${config.type} ${config.name}${at}`, context, config.backoff);
    this.#config = config;
    this.#dns = new dnsPromises.Resolver({ timeout: config.timeoutMs, tries: config.tries });
    if (config.servers.length > 0) this.#dns.setServers([...config.servers]);
  }

  protected override start(): void {
    this.refresh();
  }

  protected override refresh(): void {
    if (this.#inflight !== undefined || this.closed) return;
    this.#inflight = this.#query().finally(() => {
      this.#inflight = undefined;
    });
  }

  protected override async stop(): Promise<void> {
    this.#dns.cancel(); // pending queries reject with ECANCELLED; #query ignores them once closed
    await this.#inflight;
  }

  async #query(): Promise<void> {
    const rejected = new Set<string>();
    try {
      const answer = this.#config.type === "SRV" ? await this.#srv(rejected) : await this.#addresses(rejected);
      if (this.closed) return;
      this.#warned = rejected;
      if (answer.endpoints.length === 0) return this.failure(answer.empty);
      this.publish(answer.endpoints);
      this.scheduleRefresh(answer.delayMs, () => this.refresh());
    } catch (error) {
      if (!this.closed) this.failure(error);
    }
  }

  async #addresses(rejected: Set<string>): Promise<Answer> {
    const { type, name, port, protocol, minRefreshMs, maxRefreshMs } = this.#config;
    const records =
      type === "AAAA" ? await this.#dns.resolve6(name, { ttl: true }) : await this.#dns.resolve4(name, { ttl: true });
    const usable = records.filter((r) => this.#usable(r.address, `${type} record of ${name}`, rejected));
    return {
      endpoints: addressEndpoints(usable, port as number, protocol),
      delayMs: refreshDelayMs(
        usable.map((r) => r.ttl),
        minRefreshMs,
        maxRefreshMs,
      ),
      empty: `${type} ${name} has no usable address`,
    };
  }

  async #srv(rejected: Set<string>): Promise<Answer> {
    const { name, protocol, minRefreshMs, maxRefreshMs } = this.#config;
    const records = await this.#dns.resolveSrv(name);
    const usable = records.filter((record) => {
      const why = checkSrvRecord(record);
      if (why !== undefined) this.#reject(`SRV record of ${name}`, describeSrv(record), why, rejected);
      return why === undefined;
    });
    // RFC 2782: the lowest priority value whose targets can be reached; later groups are backups,
    // only queried when no target of the groups before them resolves.
    const targets = new Map<string, Promise<TtlAddress[]>>();
    for (const group of srvPriorityGroups(usable)) {
      const resolved: ResolvedSrv[] = await Promise.all(
        group.map(async (record) => {
          let addresses = targets.get(record.name);
          if (addresses === undefined) targets.set(record.name, (addresses = this.#target(record.name, rejected)));
          return { record, addresses: await addresses };
        }),
      );
      for (const { record, addresses } of resolved) {
        if (addresses.length === 0)
          this.#reject(
            `SRV record of ${name}`,
            describeSrv(record),
            `target ${record.name} does not resolve to a usable address`,
            rejected,
          );
      }
      const endpoints = srvEndpoints(resolved, protocol);
      if (endpoints.length > 0) {
        const ttls = resolved.flatMap((r) => r.addresses.map((a) => a.ttl));
        return { endpoints, delayMs: refreshDelayMs(ttls, minRefreshMs, maxRefreshMs), empty: "" };
      }
    }
    return {
      endpoints: [],
      delayMs: minRefreshMs,
      empty: `SRV ${name}: none of its ${records.length} record(s) has a usable target`,
    };
  }

  /** Addresses of an SRV target: A, then AAAA when there is no A; an IP literal as is. */
  async #target(target: string, rejected: Set<string>): Promise<TtlAddress[]> {
    const where = `address of SRV target ${target}`;
    if (isIP(target) !== 0) return this.#usable(target, where, rejected) ? [{ address: target }] : [];
    for (const resolve of [
      (n: string) => this.#dns.resolve4(n, { ttl: true }),
      (n: string) => this.#dns.resolve6(n, { ttl: true }),
    ]) {
      try {
        const records = await resolve(target);
        const usable = records.filter((r) => this.#usable(r.address, where, rejected));
        if (usable.length > 0) return usable;
      } catch (error) {
        // "No such name" / "no such record" is the record's fault; anything else is the server's.
        if (!isNoAnswer(error)) throw error;
      }
    }
    return [];
  }

  #usable(address: string, what: string, rejected: Set<string>): boolean {
    const why = checkAddress(address);
    if (why !== undefined) this.#reject(what, address, why, rejected);
    return why === undefined;
  }

  #reject(what: string, value: string, why: string, rejected: Set<string>): void {
    const key = `${what}\u0000${value}\u0000${why}`;
    if (!this.#warned.has(key) && !rejected.has(key)) this.reject(what, value, why);
    rejected.add(key);
  }
}

function isNoAnswer(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "ENOTFOUND" || code === "ENODATA";
}

function normalize(options: DnsDiscoveryOptions): DnsConfig {
  if (!isPlainObject(options)) fail("dnsDiscovery", options, "an object { name, type?, port?, servers?, … }");
  checkKeys(options, KEYS, "dnsDiscovery");
  const { name, type = "A", port, servers = [], protocol = "http" } = options as Record<string, unknown>;
  if (typeof name !== "string" || !/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/.test(name) || name.length > 254) {
    fail(
      "dnsDiscovery.name",
      name,
      'a DNS name such as "catalog.default.svc.cluster.local" or "_http._tcp.catalog.test"',
    );
  }
  if (type !== "A" && type !== "AAAA" && type !== "SRV") fail("dnsDiscovery.type", type, '"A", "AAAA" or "SRV"');
  if (type === "SRV" && port !== undefined)
    fail("dnsDiscovery.port", port, "no port with type SRV: every SRV record carries its own port");
  if (type !== "SRV" && !(Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65535)) {
    fail(
      "dnsDiscovery.port",
      port,
      `an integer port 1–65535 (required with type ${type}: address records carry no port)`,
    );
  }
  if (!Array.isArray(servers))
    fail("dnsDiscovery.servers", servers, 'an array of "ip", "ip:port" or "[ipv6]:port" strings');
  (servers as unknown[]).forEach((server, i) => {
    if (!isServer(server))
      fail(`dnsDiscovery.servers[${i}]`, server, '"ip", "ip:port" or "[ipv6]:port", e.g. "127.0.0.1:5353"');
  });
  if (protocol !== "http" && protocol !== "https") fail("dnsDiscovery.protocol", protocol, '"http" or "https"');
  const minRefreshMs =
    (checkMs("dnsDiscovery.minRefreshMs", options.minRefreshMs, false) as number | undefined) ?? 1000;
  const maxRefreshMs =
    (checkMs("dnsDiscovery.maxRefreshMs", options.maxRefreshMs, false) as number | undefined) ??
    Math.max(30_000, minRefreshMs);
  if (maxRefreshMs < minRefreshMs)
    fail("dnsDiscovery.maxRefreshMs", maxRefreshMs, `a number ≥ dnsDiscovery.minRefreshMs (${minRefreshMs})`);
  const timeoutMs = options.timeoutMs ?? 2000;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1)
    fail("dnsDiscovery.timeoutMs", timeoutMs, "a positive integer number of milliseconds");
  const tries = options.tries ?? 2;
  if (!Number.isInteger(tries) || tries < 1) fail("dnsDiscovery.tries", tries, "a positive integer");
  const backoff = checkSourceBackoff("dnsDiscovery.backoff", options.backoff);
  return Object.freeze({
    name,
    type,
    port: port as number | undefined,
    servers: Object.freeze([...(servers as string[])]),
    protocol,
    minRefreshMs,
    maxRefreshMs,
    timeoutMs,
    tries,
    backoff,
  });
}

/** `ip`, `ip:port` (IPv4), `[ipv6]` or `[ipv6]:port` — what `Resolver.setServers` takes. */
function isServer(value: unknown): boolean {
  if (typeof value !== "string") return false;
  if (isIP(value) !== 0) return true;
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(value);
  if (match === null) return false;
  const [, v6, v4, port] = match;
  if (v6 !== undefined ? isIP(v6) !== 6 : isIP(v4 ?? "") !== 4) return false;
  return port === undefined || (Number(port) >= 1 && Number(port) <= 65535);
}

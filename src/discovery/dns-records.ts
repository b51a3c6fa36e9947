/**
 * The pure half of DNS discovery: DNS answers in, endpoints and a refresh delay out. No sockets,
 * no timers, so the rules below are tested on plain values (`dns.test.ts`).
 *
 * - Refresh follows the TTL (RFC 1035: an answer may be reused for TTL seconds), clamped to
 *   [minRefreshMs, maxRefreshMs]: the floor keeps a TTL of 0 from turning into a query loop, the
 *   ceiling bounds how long a removed endpoint lingers. c-ares ≥ 1.23 (node 20.20 bundles 1.34)
 *   also caches answers for their TTL, so querying faster than the TTL would see nothing new.
 * - SRV (RFC 2782): clients use the lowest priority value they can reach; among those, targets
 *   get traffic in proportion to their weight. Weight 0 means "very rarely chosen when others are
 *   present": weft gives such a target 1/100 of the smallest non-zero weight in its group, and
 *   weight 1 to every target when the whole group is 0. A target with several addresses splits its
 *   weight between them, so the target as a whole keeps its RFC share.
 */
import { isIP } from "node:net";
import type { EndpointInfo } from "../core/endpoint.js";

/** An address answer with its TTL in seconds (`resolve4(name, { ttl: true })`). */
export interface TtlAddress {
  readonly address: string;
  /** Seconds; undefined when unknown (an SRV target that is already an IP literal). */
  readonly ttl?: number;
}

/** One SRV record as `node:dns` `resolveSrv` returns it. */
export interface SrvRecord {
  readonly name: string;
  readonly port: number;
  readonly priority: number;
  readonly weight: number;
}

/** An SRV record with the addresses its target resolved to. */
export interface ResolvedSrv {
  readonly record: SrvRecord;
  readonly addresses: readonly TtlAddress[];
}

/** Weight of a weight-0 SRV target, as a fraction of the smallest non-zero weight of its group. */
const ZERO_WEIGHT_FRACTION = 1 / 100;

/**
 * The refresh delay for answers with these TTLs (seconds): the smallest TTL × 1000, clamped to
 * [minMs, maxMs]. With no TTL known, `minMs`: freshness over query count (a query a second is
 * nothing for a DNS server).
 * @example refreshDelayMs([30, 5], 1000, 30_000) // 5000
 */
export function refreshDelayMs(ttls: readonly (number | undefined)[], minMs: number, maxMs: number): number {
  const known = ttls.filter((t): t is number => typeof t === "number" && Number.isFinite(t) && t >= 0);
  if (known.length === 0) return minMs;
  return Math.min(maxMs, Math.max(minMs, Math.min(...known) * 1000));
}

/** `host:port` for a URL: IPv6 literals in brackets. */
export function hostPort(address: string, port: number): string {
  return isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Why an address cannot be an endpoint, or undefined when it can. */
export function checkAddress(address: string): string | undefined {
  if (isIP(address) === 0) return "not an IP address";
  if (address === "0.0.0.0" || address === "::") return "the unspecified address (often a blocked or placeholder name)";
  return undefined;
}

/** Why an SRV record is unusable, or undefined when it is usable. */
export function checkSrvRecord(record: SrvRecord): string | undefined {
  // RFC 2782: a target of "." means "the service is decidedly not available at this domain".
  if (record.name === "" || record.name === ".") return 'target "." means the service is not available there';
  if (!Number.isInteger(record.port) || record.port < 1 || record.port > 65535)
    return `port ${record.port} is not a usable port (1–65535)`;
  return undefined;
}

/** SRV records grouped by priority, lowest value (most preferred) first. */
export function srvPriorityGroups(records: readonly SrvRecord[]): SrvRecord[][] {
  const groups = new Map<number, SrvRecord[]>();
  for (const record of records) {
    const group = groups.get(record.priority);
    if (group === undefined) groups.set(record.priority, [record]);
    else group.push(record);
  }
  return [...groups.keys()].sort((a, b) => a - b).map((priority) => groups.get(priority) as SrvRecord[]);
}

/** Endpoints for address records: one `protocol://ip:port` each, sorted, duplicates merged. */
export function addressEndpoints(
  addresses: readonly TtlAddress[],
  port: number,
  protocol: "http" | "https",
): EndpointInfo[] {
  const urls = new Set(addresses.map((a) => `${protocol}://${hostPort(a.address, port)}`));
  return [...urls].sort().map((url) => ({ url }));
}

/**
 * Endpoints for one SRV priority group whose targets resolved (targets with no address are left
 * out). Weight per the file comment; metadata names the record. Two records leading to the same
 * `ip:port` become one endpoint with their weights added.
 * @example srvEndpoints([{ record: { name: "r1.test", port: 8081, priority: 0, weight: 10 }, addresses: [{ address: "127.0.0.1", ttl: 5 }] }], "http")
 * // [{ url: "http://127.0.0.1:8081", weight: 10, metadata: { target: "r1.test", priority: "0", srvWeight: "10" } }]
 */
export function srvEndpoints(group: readonly ResolvedSrv[], protocol: "http" | "https"): EndpointInfo[] {
  const live = group.filter((g) => g.addresses.length > 0);
  const nonZero = live.map((g) => g.record.weight).filter((w) => w > 0);
  const zeroWeight = nonZero.length === 0 ? 1 : Math.min(...nonZero) * ZERO_WEIGHT_FRACTION;
  const byUrl = new Map<string, EndpointInfo>();
  for (const { record, addresses } of live) {
    const targetWeight = record.weight > 0 ? record.weight : zeroWeight;
    const unique = [...new Set(addresses.map((a) => a.address))];
    for (const address of unique) {
      const url = `${protocol}://${hostPort(address, record.port)}`;
      const weight = targetWeight / unique.length;
      const previous = byUrl.get(url);
      byUrl.set(url, {
        url,
        weight: (previous?.weight ?? 0) + weight,
        metadata: previous?.metadata ?? {
          target: record.name,
          priority: String(record.priority),
          srvWeight: String(record.weight),
        },
      });
    }
  }
  return [...byUrl.values()].sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
}

/** A short, stable description of an SRV record for warnings: `priority weight port target`. */
export function describeSrv(record: SrvRecord): string {
  return `${record.priority} ${record.weight} ${record.port} ${record.name === "" ? "." : record.name}`;
}

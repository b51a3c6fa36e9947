/**
 * Option checks every etcd-backed factory shares (`etcdDiscovery`, `etcdRegistration`,
 * `etcdConfig`), so a bad host or prefix reads the same whichever option names it.
 */
import { fail } from "../core/validate.js";

/**
 * Checks `hosts`: a non-empty array of http(s) origins (a trailing slash is dropped).
 * @example checkHosts("etcdConfig.hosts", ["http://127.0.0.1:2379/"]) // ["http://127.0.0.1:2379"]
 */
export function checkHosts(option: string, hosts: unknown): readonly string[] {
  const allowed = 'a non-empty array of http(s) URLs of etcd, e.g. ["http://127.0.0.1:2379"]';
  if (!Array.isArray(hosts) || hosts.length === 0) fail(option, hosts, allowed);
  return Object.freeze(
    hosts.map((host: unknown, i) => {
      let url: URL | undefined;
      try {
        url = typeof host === "string" ? new URL(host) : undefined;
      } catch {
        url = undefined;
      }
      if (
        url === undefined ||
        (url.protocol !== "http:" && url.protocol !== "https:") ||
        url.pathname !== "/" ||
        url.search !== "" ||
        url.username !== ""
      ) {
        fail(`${option}[${i}]`, host, allowed);
      }
      return url.origin;
    }),
  );
}

/**
 * Checks `prefix`: a non-empty string; `example` (default `"/services/catalog/"`) shows a prefix
 * of the caller's kind in the message.
 * @example checkPrefix("etcdConfig.prefix", options.prefix, "/weft/config/")
 */
export function checkPrefix(option: string, prefix: unknown, example = "/services/catalog/"): string {
  if (typeof prefix !== "string" || prefix === "")
    fail(option, prefix, `a non-empty key prefix, e.g. ${JSON.stringify(example)}`);
  return prefix;
}

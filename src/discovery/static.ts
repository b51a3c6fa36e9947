/**
 * `staticDiscovery(urls)` — a fixed list of endpoints. The URLs are checked when the factory is
 * called, so a typo fails at construction, not on the first request.
 */
import type { Discovery, Resolver, ResolverSnapshot } from "../core/discovery.js";
import type { EndpointInfo } from "../core/endpoint.js";
import { InvalidOptionsError } from "../core/errors.js";
import type { Disposer } from "../core/types.js";

/**
 * @param urls `http://host:port` (or `https://…`) strings, or endpoint objects with a weight/zone.
 * @example staticDiscovery(["http://127.0.0.1:8081", "http://127.0.0.1:8082"])
 */
export function staticDiscovery(urls: readonly (string | EndpointInfo)[]): Discovery {
  if (!Array.isArray(urls) || urls.length === 0) {
    throw new InvalidOptionsError(
      "discovery",
      `staticDiscovery: expected a non-empty array of endpoint URLs, got ${describe(urls)}`,
    );
  }
  // (Array.isArray narrows a readonly array to any[]: back to the declared type.)
  const list = urls as readonly (string | EndpointInfo)[];
  const endpoints = list.map((entry, i) => validateEndpoint(entry, `staticDiscovery[${i}]`));
  const frozen = Object.freeze(endpoints);
  return {
    key: `static:${frozen.map((e) => e.url).join(",")}`,
    create: (): Resolver => new StaticResolver(frozen),
  };
}

class StaticResolver implements Resolver {
  readonly #endpoints: readonly EndpointInfo[];
  constructor(endpoints: readonly EndpointInfo[]) {
    this.#endpoints = endpoints;
  }
  subscribe(listener: (endpoints: readonly EndpointInfo[]) => void): Disposer {
    listener(this.#endpoints);
    return () => {};
  }
  snapshot(): ResolverSnapshot {
    return { source: "static", endpoints: this.#endpoints, updatedAt: 0, stale: false, lastError: undefined };
  }
  async close(): Promise<void> {}
}

/** Checks one endpoint description: an absolute http(s) URL, optional positive weight. */
export function validateEndpoint(entry: string | EndpointInfo, where: string): EndpointInfo {
  const info: EndpointInfo = typeof entry === "string" ? { url: entry } : entry;
  if (typeof info !== "object" || info === null || typeof info.url !== "string") {
    throw new InvalidOptionsError(
      "discovery",
      `${where}: expected a URL string or { url, weight?, zone? }, got ${describe(entry)}`,
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(info.url);
  } catch {
    throw new InvalidOptionsError(
      "discovery",
      `${where}: "${info.url}" is not an absolute URL; expected e.g. "http://127.0.0.1:8080"`,
    );
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new InvalidOptionsError(
      "discovery",
      `${where}: "${info.url}" has protocol ${parsed.protocol}; allowed: http:, https:`,
    );
  }
  if (parsed.search !== "" || parsed.hash !== "" || parsed.username !== "") {
    throw new InvalidOptionsError(
      "discovery",
      `${where}: "${info.url}" must not carry a query, fragment or credentials`,
    );
  }
  if (
    info.weight !== undefined &&
    !(typeof info.weight === "number" && info.weight > 0 && Number.isFinite(info.weight))
  ) {
    throw new InvalidOptionsError(
      "discovery",
      `${where}: weight must be a positive number, got ${describe(info.weight)}`,
    );
  }
  if (info.zone !== undefined && (typeof info.zone !== "string" || info.zone.length === 0)) {
    throw new InvalidOptionsError("discovery", `${where}: zone must be a non-empty string, got ${describe(info.zone)}`);
  }
  const metadata: unknown = info.metadata;
  if (
    metadata !== undefined &&
    !(
      typeof metadata === "object" &&
      metadata !== null &&
      !Array.isArray(metadata) &&
      Object.values(metadata).every((v) => typeof v === "string")
    )
  ) {
    throw new InvalidOptionsError(
      "discovery",
      `${where}: metadata must be an object of string values, got ${describe(metadata)}`,
    );
  }
  // A clean copy: only the fields weft reads, so data from a registry cannot smuggle in others.
  return {
    url: info.url,
    ...(info.weight !== undefined ? { weight: info.weight } : {}),
    ...(info.zone !== undefined ? { zone: info.zone } : {}),
    ...(metadata !== undefined ? { metadata: { ...(metadata as Record<string, string>) } } : {}),
  };
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

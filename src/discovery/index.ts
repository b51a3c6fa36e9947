export { staticDiscovery, validateEndpoint } from "./static.js";
export { fileDiscovery } from "./file.js";
export type { FileDiscoveryOptions } from "./file.js";
export { SourceResolver } from "./source.js";
export { dnsDiscovery } from "./dns.js";
export type { DnsDiscoveryOptions } from "./dns.js";

export { staticDiscovery } from "./static.js";
export { fileDiscovery } from "./file.js";
export type { FileDiscoveryOptions } from "./file.js";
export { dnsDiscovery } from "./dns.js";
export type { DnsDiscoveryOptions } from "./dns.js";
export { etcdDiscovery } from "./etcd.js";
export type { EtcdDiscoveryOptions } from "./etcd.js";
export { etcdRegistration } from "./etcd-registration.js";
export type { EtcdRegistrationOptions, EtcdRegistration } from "./etcd-registration.js";

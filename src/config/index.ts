export { fileConfig } from "./file.js";
export type { FileConfigOptions } from "./file.js";
export { etcdConfig } from "./etcd.js";
export type { EtcdConfigOptions } from "./etcd.js";

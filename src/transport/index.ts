export { undiciTransport } from "./undici.js";
export type { UndiciTransportOptions } from "./undici.js";
export { fetchTransport } from "./fetch.js";
export type { FetchTransportOptions } from "./fetch.js";
export { gotTransport } from "./got.js";
export { http2Transport } from "./http2.js";
export type { Http2TransportOptions } from "./http2.js";

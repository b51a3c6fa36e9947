export { createClient, createMesh, Mesh } from "./mesh.js";
export {
  policy,
  Policy,
  type PolicyOptions,
  type PolicyFunction,
  type PolicyResult,
  type ExecuteOptions,
  type PolicyEvents,
  type PolicySnapshot,
  type PolicyBreakerSnapshot,
} from "./policy.js";
export type { MeshOptions, MeshSnapshot } from "./mesh.js";
export { Client } from "./client.js";
export type { MeshRequestInit, MeshFetchInit, ClientSnapshot, EndpointSnapshot } from "./client.js";
export type { ClientOptions, ClientDefaults, TimeoutOptions, RouteOptions } from "./options.js";
export type { RoutingSnapshot, RouteSnapshot } from "./routing.js";
export type { BodyInit } from "./body.js";
export type { HeadersInput } from "./headers.js";
// For weft/grpc, which imports ../core/ and ../client/ only: the TLS origination the undici and
// HTTP/2 transports use, so a gRPC client's channels verify, count and rotate the same way.
// Internal to the package: src/index.ts exports the public part (IdentityError, TlsOptions) itself.
export { TlsClient, IdentityError, tlsFailure, type TlsOptions } from "../transport/tls.js";

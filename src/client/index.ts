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

/** weft/server — the inbound side of the mesh: deadlines, load shedding, identity, access rules, health, drain. Re-exports only. */
export { inbound, Inbound } from "./inbound.js";
export type {
  InboundOptions,
  DeadlineOptions,
  ShedOptions,
  IdentityOptions,
  HealthOptions,
  DrainOptions,
  ServerTlsOptions,
} from "./options.js";
export { tlsFiles } from "../security/files.js";
export { tlsMaterial } from "../security/material.js";
export type { TlsSource, TlsMaterial, TlsSnapshot } from "../security/material.js";
export { INBOUND_DEFAULTS } from "./options.js";
export { InboundContext, inboundContext } from "./context.js";
export type { Priority, AdmissionSnapshot } from "./admission.js";
export type { AuthzOptions, AuthzRule, AuthzDecision } from "./authz.js";
export { parseSpiffeId } from "./identity.js";
export type { SpiffeId, PeerIdentity, IdentityReading } from "./identity.js";
export type { DrainResult } from "./drain.js";
export { SERVER_CHANNELS } from "./events.js";
export type {
  ServerEvents,
  RequestEndEvent,
  ShedEvent,
  AuthzEvent,
  DeadlineRefusedEvent,
  DrainEvent,
} from "./events.js";
export type { RequestHandler, Middleware } from "./node.js";
export type { FastifyPlugin } from "./fastify.js";
export type { ServerSnapshot, ServerState } from "../core/server-snapshot.js";
export { parseGrpcTimeout } from "./deadline.js";

/** weft — a service mesh inside the Node.js process. Re-exports only. */
export { createClient, createMesh, Mesh, Client } from "./client/index.js";
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
} from "./client/index.js";
export type {
  ClientOptions,
  ClientDefaults,
  TimeoutOptions,
  MeshOptions,
  MeshSnapshot,
  MeshRequestInit,
  MeshFetchInit,
  ClientSnapshot,
  EndpointSnapshot,
  BodyInit,
  HeadersInput,
  RouteOptions,
  RoutingSnapshot,
  RouteSnapshot,
} from "./client/index.js";
export type {
  RouteOptionsBase,
  RouteMatch,
  RouteBackend,
  RouteMirror,
  RouteFault,
  StringMatch,
} from "./route/index.js";
export type { CallRoute, EndpointSubset } from "./core/route.js";
export { staticDiscovery, fileDiscovery, dnsDiscovery, etcdDiscovery, etcdRegistration } from "./discovery/index.js";
export type {
  FileDiscoveryOptions,
  DnsDiscoveryOptions,
  EtcdDiscoveryOptions,
  EtcdRegistrationOptions,
  EtcdRegistration,
} from "./discovery/index.js";
export { fileConfig, etcdConfig } from "./config/index.js";
export type { FileConfigOptions, EtcdConfigOptions } from "./config/index.js";
export type {
  ConfigSource,
  ConfigWatch,
  ConfigVersion,
  ConfigWatchSnapshot,
  ConfigWatchContext,
} from "./core/config-source.js";
export { p2cEwma, roundRobin, random, leastRequest, ringHash, maglev } from "./balance/index.js";
export type {
  Balancer,
  Picker,
  PickerContext,
  P2cEwmaOptions,
  RoundRobinOptions,
  RandomOptions,
  LeastRequestOptions,
  RingHashOptions,
  MaglevOptions,
  HashKey,
  ZoneAwareOptions,
} from "./balance/index.js";
export type { BreakerOptions, OutlierOptions, SlowStartOptions, HealthCheckOptions } from "./health/index.js";
export { undiciTransport, fetchTransport, gotTransport } from "./transport/index.js";
export type { UndiciTransportOptions, FetchTransportOptions } from "./transport/index.js";
export { http2Transport, type Http2TransportOptions } from "./transport/index.js";
export { IdentityError, TlsError } from "./transport/tls.js";
export type { TlsOptions, TlsClientSnapshot } from "./transport/tls.js";
export { tlsFiles } from "./security/files.js";
export type { TlsFilesOptions } from "./security/files.js";
export { tlsMaterial } from "./security/material.js";
export type { TlsMaterial, TlsPem, TlsSnapshot, TlsSource } from "./security/material.js";
export { parseSpiffeId } from "./security/spiffe.js";
export type { SpiffeId } from "./security/spiffe.js";
export {
  WeftError,
  isWeftError,
  ErrorCodes,
  InvalidOptionsError,
  NoEndpointsError,
  AttemptTimeoutError,
  TotalTimeoutError,
  ClientClosedError,
  BodyUsedError,
  BreakerOpenError,
  BudgetExhaustedError,
  AttemptsExhaustedError,
  ConcurrencyLimitError,
  RateLimitedError,
  RequestAbortedError,
  errorCode,
} from "./core/errors.js";
export { HedgeLostError, FaultInjectedError, NoRouteBackendError, RefusedStreamError } from "./core/errors.js";
export type { RetryOptions, HedgeOptions, RetryBudgetConfig, BackoffConfig } from "./retry/index.js";
export type { ConcurrencyOptions, RateLimitOptions, Fallback, FallbackReply, CoalesceKey } from "./limit/index.js";
export type { WeftErrorCode } from "./core/errors.js";
export { defaultClassifier, isIdempotentRequest, neverReachedServer, SHED_HEADER } from "./core/classifier.js";
export type { Classifier, Outcome } from "./core/classifier.js";
export { Stack, middlewareLayer } from "./core/stack.js";
export { CHANNELS } from "./core/events.js";
export type { StackEntry } from "./core/stack.js";
export { Cancellation } from "./core/cancel.js";
export { RequestContext, currentContext, runWithContext, runWithoutContext } from "./core/context.js";
export type { RequestContextInit } from "./core/context.js";
export type { ServerSnapshot, ServerSource, ServerState } from "./core/server-snapshot.js";
export { BufferedResponse } from "./core/response.js";
export { newRequest, deriveRequest, withHeaders, withAttr, isReplayable } from "./core/request.js";
export { systemClock, seededRandom } from "./core/clock.js";
export type { Clock, Random, TimerHandle } from "./core/clock.js";
export type { Endpoint, EndpointInfo, EndpointHealth } from "./core/endpoint.js";
export type { Discovery, Resolver, ResolverSnapshot, ResolverContext } from "./core/discovery.js";
export type { ConnectionsSnapshot, Transport, TransportFactory } from "./core/transport.js";
export type {
  ClientEvents,
  AttemptStartEvent,
  AttemptEndEvent,
  CallEndEvent,
  TimeoutEvent,
  EndpointsChangedEvent,
  DiscoveryStateEvent,
  RetryEvent,
  HedgeEvent,
  BudgetExhaustedEvent,
  BreakerStateEvent,
  LimitEvent,
  EndpointHealthEvent,
  ConfigEvent,
} from "./core/events.js";
export type {
  MeshRequest,
  MeshResponse,
  MeshBody,
  Service,
  Layer,
  Middleware,
  Disposer,
  HeaderMap,
  ResponseHeaderMap,
  CallTimeout,
} from "./core/types.js";
/** The type of `MeshRequest.call`: one per call, made by `newRequest()`. */
export type { CallState } from "./core/types.js";

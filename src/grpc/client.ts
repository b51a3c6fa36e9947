/**
 * `grpcClient(Service, options)`: a gRPC service's methods, each call going through a weft
 * client's stack — discovery, balancing per call, breakers, outlier detection, retries with the
 * budget, hedging, deadlines, tracing, metrics, one classifier — whose transport sends it on a
 * grpc-js channel per endpoint (transport.ts).
 *
 * Why weft's stack with a gRPC transport, not a grpc-js interceptor with a channel per endpoint,
 * nor weft as a grpc-js resolver and load-balancing policy: with an interceptor or an LB policy,
 * grpc-js would own the call loop (its pick, its retries, its deadline), and weft's policies would
 * be rebuilt beside grpc-js's, with a second notion of an attempt's outcome; the balancer
 * interface of grpc-js is a connectivity-state machine with a synchronous pick, which cannot wait
 * for discovery, hold a breaker or steer by latency the way weft's layers do. As a transport,
 * grpc-js does one thing — move one attempt's bytes over HTTP/2 — and every decision is the stack's.
 */
import type { Client, ClientOptions, RouteOptions } from "../client/index.js";
import { createClient, Mesh, TlsClient } from "../client/index.js";
import { systemClock } from "../core/clock.js";
import { InvalidOptionsError } from "../core/errors.js";
import { fail, isPlainObject } from "../core/validate.js";
import { loadGrpc } from "./load.js";
import {
  bidiStreamMethod,
  clientStreamMethod,
  serverStreamMethod,
  unaryMethod,
  type MethodContext,
} from "./methods.js";
import {
  checkGrpcOptions,
  type GrpcClientOptions,
  type GrpcMethodConfig,
  type GrpcMethodDefinition,
  type GrpcService,
  type GrpcServiceDefinition,
} from "./options.js";
import { grpcTransport, type MethodShape, type TransportLink } from "./transport.js";

/** What every `grpcClient()` has besides the service's methods. */
export interface GrpcClientControls {
  /** The weft client underneath: `snapshot()`, `events`, `stack`. */
  readonly weft: Client;
  /** Stops new calls, lets calls in flight finish, closes every channel. */
  close(): Promise<void>;
}

/**
 * The methods of a service loaded at run time, untyped as grpc-js's own `ServiceClient`'s are.
 * Type them with `grpcClient<{ sayHello: GrpcUnaryMethod<HelloRequest, HelloReply> }>(…)`.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type UntypedGrpcMethods = Record<string, (...args: any[]) => any>;

/** What `grpcClient()` returns: the service's methods by name (and grpc-js's camelCase name), and its controls. */
export type GrpcServiceClient<Methods extends object = UntypedGrpcMethods> = Methods & GrpcClientControls;

const RESERVED = new Set(["weft", "close"]);
const IDEMPOTENCY_LEVELS = new Set(["IDEMPOTENT", "NO_SIDE_EFFECTS"]);

/**
 * A client for a gRPC service through weft's stack. `Service` is a generated client class
 * (`loadPackageDefinition(...).pkg.Greeter`) or its `service` definition. Endpoints are
 * `http://host:port` (plaintext, h2c) or `https://host:port` (TLS: `tls`, as `createClient` takes
 * it, or `grpc.credentials`).
 * Needs `@grpc/grpc-js` (an optional peer dependency).
 * @example
 * const greeter = grpcClient(Greeter, {
 *   service: "greeter",
 *   discovery: staticDiscovery(["http://10.0.0.1:50051", "http://10.0.0.2:50051"]),
 *   grpc: { methods: { SayHello: { idempotent: true } } },
 * });
 * const reply = await greeter.sayHello({ name: "weft" });
 */
export function grpcClient<Methods extends object = UntypedGrpcMethods>(
  service: GrpcService,
  options: GrpcClientOptions,
): GrpcServiceClient<Methods> {
  if (!isPlainObject(options)) fail("options", options, "an object with at least { service, discovery }");
  const { grpc: grpcOptions, mesh, tls: tlsOptions, ...rest } = options;
  const transportOption = (rest as Record<string, unknown>).transport;
  if (transportOption !== undefined)
    fail(
      "transport",
      transportOption,
      "absent: a gRPC client's transport is grpc-js (TLS through `tls` or grpc.credentials)",
    );
  if (mesh !== undefined && !(mesh instanceof Mesh)) fail("mesh", mesh, "a mesh made by createMesh()");
  const config = checkGrpcOptions(grpcOptions);
  if (tlsOptions !== undefined && config.credentials !== undefined)
    fail(
      "tls",
      "(with grpc.credentials)",
      "absent when `grpc.credentials` is given: one or the other secures the channels (weft's `tls` checks the SPIFFE identity and rotates)",
    );
  const methods = methodsOf(definitionOf(service), config.methods ?? {});
  const grpc = loadGrpc();
  if (config.credentials !== undefined && !(config.credentials instanceof grpc.ChannelCredentials)) {
    fail(
      "grpc.credentials",
      config.credentials,
      "ChannelCredentials from the same @grpc/grpc-js as the application's (another copy of grpc-js made these)",
    );
  }
  // The mesh's default `tls` secures the channels of a client that brings neither its own nor
  // grpc.credentials — as it does every HTTP client of the mesh.
  const chosenTls = tlsOptions ?? (config.credentials === undefined ? mesh?.defaultTls : undefined);
  // Checked as createClient({ tls }) checks it, and named as it names it (its undici transport's `tls`).
  const tls = chosenTls === undefined ? null : new TlsClient(chosenTls, {}, "transport.tls");
  // The client is made after its transport; the transport reads these once it sends.
  const link: TransportLink = { deadlineHeader: false, clock: systemClock };
  const shapes = new Map<string, MethodShape>(methods.map((m) => [m.definition.path, m.definition]));
  const transport = grpcTransport({
    grpc,
    methods: shapes,
    credentials: config.credentials,
    tls,
    channelOptions: config.channelOptions ?? {},
    link,
  });
  // Per-method retry and hedging are routes on the method's path, ahead of the caller's own.
  const routed = methods.filter((m) => m.config.retry !== undefined || m.config.hedge !== undefined);
  const routes = routed.map((m) => ({
    name: `grpc ${m.name}`,
    match: { path: m.definition.path },
    ...(m.config.retry === undefined ? {} : { retry: m.config.retry }),
    ...(m.config.hedge === undefined ? {} : { hedge: m.config.hedge }),
  }));
  // Routes that are not an array are left for the client to reject.
  const own: readonly RouteOptions[] | null = Array.isArray(rest.routes)
    ? rest.routes
    : rest.routes === undefined
      ? []
      : null;
  const clientOptions: ClientOptions = {
    ...rest,
    transport,
    ...(routes.length === 0 || own === null ? {} : { routes: [...routes, ...own] }),
  };
  let client: Client;
  try {
    if (mesh === undefined) client = createClient(clientOptions);
    else {
      const { service: name, ...inMesh } = clientOptions;
      // The channels carry the TLS (above): the mesh's default must not reach the client as well,
      // where `tls` beside a transport is refused.
      client = mesh.client(name, { ...inMesh, tls: undefined });
    }
  } catch (error) {
    tls?.close();
    throw methodOptionError(error, routed);
  }
  link.deadlineHeader = client.config.deadlineHeader;
  link.clock = client.config.clock;

  const surface: Record<string, unknown> = {};
  for (const m of methods) {
    const { definition } = m;
    const ctx: MethodContext = {
      grpc,
      client,
      path: definition.path,
      requestStream: definition.requestStream,
      responseStream: definition.responseStream,
      serialize: definition.requestSerialize,
      deserialize: definition.responseDeserialize,
      idempotent:
        m.config.idempotent ?? IDEMPOTENCY_LEVELS.has(definition.options?.idempotency_level ?? "IDEMPOTENCY_UNKNOWN"),
      timeout: m.config.timeoutMs === undefined ? undefined : { totalMs: m.config.timeoutMs },
    };
    const method = definition.requestStream
      ? definition.responseStream
        ? bidiStreamMethod(ctx)
        : clientStreamMethod(ctx)
      : definition.responseStream
        ? serverStreamMethod(ctx)
        : unaryMethod(ctx);
    surface[m.name] = method;
    if (definition.originalName !== undefined) surface[definition.originalName] = method;
  }
  Object.defineProperty(surface, "weft", { value: client, enumerable: false });
  Object.defineProperty(surface, "close", { value: () => client.close(), enumerable: false });
  return surface as GrpcServiceClient<Methods>;
}

interface Method {
  readonly name: string;
  readonly definition: GrpcMethodDefinition;
  readonly config: GrpcMethodConfig;
}

function definitionOf(service: unknown): GrpcServiceDefinition {
  const definition = typeof service === "function" ? (service as { service?: unknown }).service : service;
  if (!isPlainObject(definition) || Object.keys(definition).length === 0)
    fail(
      "service",
      service,
      "a gRPC client class from grpc.loadPackageDefinition() / grpc-tools, or its `service` definition",
    );
  for (const [name, method] of Object.entries(definition)) {
    const m = method as Partial<GrpcMethodDefinition> | null;
    if (
      m === null ||
      typeof m !== "object" ||
      typeof m.path !== "string" ||
      !m.path.startsWith("/") ||
      typeof m.requestStream !== "boolean" ||
      typeof m.responseStream !== "boolean" ||
      typeof m.requestSerialize !== "function" ||
      typeof m.responseDeserialize !== "function"
    )
      fail(
        `service.${name}`,
        method,
        "a method definition { path, requestStream, responseStream, requestSerialize, responseDeserialize }",
      );
  }
  return definition as GrpcServiceDefinition;
}

/** The service's methods with their config (looked up by proto name or camelCase name). */
function methodsOf(
  definition: GrpcServiceDefinition,
  configs: Readonly<Record<string, GrpcMethodConfig>>,
): readonly Method[] {
  const names = new Map<string, string>();
  for (const [name, method] of Object.entries(definition)) {
    for (const alias of [name, method.originalName]) {
      if (alias === undefined) continue;
      if (RESERVED.has(alias))
        fail(`service.${name}`, alias, `a method name other than ${[...RESERVED].join(" and ")} (the client's own)`);
      names.set(alias, name);
    }
  }
  const byMethod = new Map<string, GrpcMethodConfig>();
  for (const [key, config] of Object.entries(configs)) {
    const name = names.get(key);
    if (name === undefined)
      fail(`grpc.methods.${key}`, key, `a method of the service: ${[...names.keys()].join(", ")}`);
    if (byMethod.has(name)) fail(`grpc.methods.${key}`, key, `one config per method (${name} has two)`);
    byMethod.set(name, config);
  }
  return Object.entries(definition).map(([name, m]) => ({ name, definition: m, config: byMethod.get(name) ?? {} }));
}

/** A method's retry or hedge rejected by the client's rules (as `routes[i]…`): named as the method's option. */
function methodOptionError(error: unknown, routed: readonly Method[]): unknown {
  if (!(error instanceof InvalidOptionsError)) return error;
  const match = /^routes\[(\d+)\](.*)$/.exec(error.option);
  const method = match === null ? undefined : routed[Number(match[1])];
  if (match === null || method === undefined) return error;
  const option = `grpc.methods.${method.name}${match[2] as string}`;
  return new InvalidOptionsError(
    option,
    error.message.split(`routes[${match[1]}]`).join(`grpc.methods.${method.name}`),
  );
}

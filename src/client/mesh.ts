/**
 * A mesh groups clients: shared defaults, shared resolvers (one per discovery source), shared
 * transports (one connection pool per endpoint origin, whichever client uses it), one `close()`.
 * `createClient()` is a client in a mesh of its own.
 */
import type { Discovery, Resolver, ResolverSnapshot } from "../core/discovery.js";
import type { EndpointInfo } from "../core/endpoint.js";
import { systemClock, type Clock, type Random } from "../core/clock.js";
import { InvalidOptionsError } from "../core/errors.js";
import type { Transport, TransportFactory } from "../core/transport.js";
import type { TlsOptions } from "../transport/tls.js";
import type { Disposer } from "../core/types.js";
import type { ServerSnapshot, ServerSource } from "../core/server-snapshot.js";
import { Client, type ClientParts, type ClientSnapshot } from "./client.js";
import {
  checkDefaults,
  mergeOptions,
  normalizeOptions,
  type ClientConfig,
  type ClientDefaults,
  type ClientOptions,
} from "./options.js";
import { checkKeys, fail, isPlainObject } from "../core/validate.js";

export interface MeshOptions {
  /** Options every client of the mesh starts from; a client's own options win. */
  readonly defaults?: ClientDefaults;
  /** Receives warnings (rejected discovery input, failing sources). Default: `process.emitWarning`. */
  readonly onWarning?: (message: string) => void;
}

export interface MeshSnapshot {
  /** Wall-clock time of the snapshot, ms since the epoch. */
  readonly takenAt: number;
  readonly clients: readonly ClientSnapshot[];
  /** The inbound sides (`weft/server`) that joined the mesh with `inbound({ mesh })`. */
  readonly servers: readonly ServerSnapshot[];
}

interface SharedResolver {
  readonly resolver: Resolver;
  users: number;
}

export class Mesh {
  readonly #defaults: ClientDefaults;
  readonly #warn: (message: string) => void;
  readonly #clients = new Map<string, Client>();
  readonly #servers = new Set<ServerSource>();
  readonly #transports = new Map<TransportFactory, Transport>();
  readonly #resolvers = new Map<string, SharedResolver>();
  /** Per transport, how many endpoints (of every client) use each origin's pool. */
  readonly #origins = new Map<Transport, Map<string, number>>();
  /** Pools being closed after their last endpoint left: `close()` waits for them. */
  readonly #releasing = new Set<Promise<void>>();
  #closed = false;
  #closing: Promise<void> | undefined;
  #sharedClosing: Promise<void> | undefined;
  /** Set by `createClient`: the mesh exists for one client and closes with it. */
  #standalone = false;

  constructor(options: MeshOptions = {}) {
    if (!isPlainObject(options)) fail("createMesh options", options, "{ defaults?, onWarning? }");
    checkKeys(options, ["defaults", "onWarning"], "");
    if (options.onWarning !== undefined && typeof options.onWarning !== "function")
      fail("onWarning", options.onWarning, "a function (message) => void");
    this.#defaults = checkDefaults(options.defaults);
    this.#warn =
      (options.onWarning as ((message: string) => void) | undefined) ??
      ((message: string) => process.emitWarning(message, { code: "WEFT_WARNING" }));
  }

  /** The clients of this mesh, by service name. */
  get clients(): ReadonlyMap<string, Client> {
    return this.#clients;
  }

  /**
   * The mesh's default `tls`, for a client that secures its connections itself (`grpcClient`'s
   * channels): it takes these unless it has its own, and makes its client with `tls: undefined`.
   * @internal
   */
  get defaultTls(): TlsOptions | undefined {
    return this.#defaults.tls;
  }

  /**
   * Makes a client for `service`, starting from the mesh defaults.
   * @example const catalog = mesh.client("catalog", { discovery: staticDiscovery(urls) });
   */
  client(service: string, options: Partial<Omit<ClientOptions, "service">> = {}): Client {
    if (this.#closed)
      throw new InvalidOptionsError("service", `mesh is closed: cannot create a client for "${service}"`);
    if (!isPlainObject(options)) fail("options", options, "an object of client options");
    if (this.#clients.has(service)) {
      throw new InvalidOptionsError(
        "service",
        `invalid option service: got ${JSON.stringify(service)}; a client for this service already exists in the mesh`,
      );
    }
    const config = normalizeOptions({ ...mergeOptions(this.#defaults, options), service });
    const newTransport = !this.#transports.has(config.transport);
    const transport = this.#transportFor(config.transport);
    const shared = this.#resolverFor(config.discovery, config.clock, config.random);
    shared.users++;
    let released = false;
    try {
      const client = this.#make(config, transport, shared, () => {
        if (released) return false;
        released = true;
        return true;
      });
      this.#clients.set(service, client);
      return client;
    } catch (error) {
      // The client did not come to be: give back what was made for it, as its close() would.
      shared.users--;
      if (shared.users === 0) {
        this.#resolvers.delete(config.discovery.key);
        void shared.resolver.close().catch(() => {});
      }
      if (this.#standalone) {
        this.#closed = true;
        void this.#closeShared().catch(() => {});
      } else if (newTransport && !this.#inUse(transport)) {
        this.#transports.delete(config.transport);
        this.#origins.delete(transport);
        void transport.close().catch(() => {});
      }
      throw error;
    }
  }

  /** True when a client of this mesh sends through `transport`. */
  #inUse(transport: Transport): boolean {
    for (const client of this.#clients.values())
      if (this.#transports.get(client.config.transport) === transport) return true;
    return false;
  }

  /** The client itself; `release()` is true the first time it is called (its close gives back the shared parts once). */
  #make(config: ClientConfig, transport: Transport, shared: SharedResolver, release: () => boolean): Client {
    return new Client(config, {
      transport,
      resolver: {
        subscribe: (listener: (endpoints: readonly EndpointInfo[]) => void): Disposer =>
          shared.resolver.subscribe(listener),
        snapshot: (): ResolverSnapshot => shared.resolver.snapshot(),
        onState: (listener: (state: ResolverSnapshot) => void): Disposer =>
          shared.resolver.onState?.(listener) ?? (() => {}),
      },
      warn: this.#warn,
      peer: (name) => this.#clients.get(name),
      origins: this.#originsOf(transport),
      onClose: async (closing) => {
        if (!release()) return;
        this.#clients.delete(closing.service);
        shared.users--;
        if (shared.users === 0) {
          this.#resolvers.delete(config.discovery.key);
          await shared.resolver.close();
        }
        if (this.#standalone) {
          this.#closed = true;
          await this.#closeShared();
        }
      },
    });
  }

  snapshot(): MeshSnapshot {
    return {
      takenAt: (this.#defaults.clock ?? systemClock).wallNow(),
      clients: [...this.#clients.values()].map((c) => c.snapshot()),
      servers: [...this.#servers].map((s) => s.snapshot()),
    };
  }

  /**
   * Shows a server's inbound side in this mesh's snapshot, admin page and Prometheus text, until
   * the returned disposer runs. `inbound({ mesh })` from `weft/server` calls it.
   */
  addServer(server: ServerSource): Disposer {
    for (const other of this.#servers) {
      if (other !== server && other.service === server.service) {
        throw new InvalidOptionsError(
          "mesh",
          `invalid option mesh: a server for service "${server.service}" is already in this mesh (its snapshot, admin card and metrics would collide); close it first or name this one differently`,
        );
      }
    }
    this.#servers.add(server);
    return () => {
      this.#servers.delete(server);
    };
  }

  /** Closes every client, resolver and transport; in-flight calls finish first. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#clients.values()].map((c) => c.close()));
    await this.#closeShared();
  }

  #closeShared(): Promise<void> {
    this.#sharedClosing ??= (async () => {
      const resolvers = [...this.#resolvers.values()];
      this.#resolvers.clear();
      await Promise.all(resolvers.map((r) => r.resolver.close()));
      const transports = [...this.#transports.values()];
      this.#transports.clear();
      await Promise.all([...transports.map((t) => t.close()), ...this.#releasing]);
    })();
    return this.#sharedClosing;
  }

  /** @internal Used by `createClient`: the mesh closes with its only client. */
  static standalone(): Mesh {
    const mesh = new Mesh();
    mesh.#standalone = true;
    return mesh;
  }

  #transportFor(factory: TransportFactory): Transport {
    let transport = this.#transports.get(factory);
    if (transport === undefined) {
      transport = factory.create();
      this.#transports.set(factory, transport);
    }
    return transport;
  }

  #originsOf(transport: Transport): ClientParts["origins"] {
    let counts = this.#origins.get(transport);
    if (counts === undefined) this.#origins.set(transport, (counts = new Map<string, number>()));
    const held = counts;
    return {
      hold: (origin) => held.set(origin, (held.get(origin) ?? 0) + 1),
      release: (origin) => {
        const left = (held.get(origin) ?? 1) - 1;
        if (left > 0) {
          held.set(origin, left);
          return;
        }
        held.delete(origin);
        // The last endpoint using this pool left: close it gracefully (attempts in flight finish).
        const releasing = (transport.release?.(origin) ?? Promise.resolve())
          .catch((error: unknown) => this.#warn(`weft: releasing the connections to ${origin}: ${String(error)}`))
          .finally(() => this.#releasing.delete(releasing));
        this.#releasing.add(releasing);
      },
    };
  }

  #resolverFor(discovery: Discovery, clock: Clock, random: Random): SharedResolver {
    let shared = this.#resolvers.get(discovery.key);
    if (shared === undefined) {
      shared = { resolver: discovery.create({ clock, random, warn: this.#warn }), users: 0 };
      this.#resolvers.set(discovery.key, shared);
    }
    return shared;
  }
}

/**
 * Groups clients with shared defaults, resolvers and connection pools.
 * @example const mesh = createMesh({ defaults: { timeout: { totalMs: 2000 } } });
 */
export function createMesh(options: MeshOptions = {}): Mesh {
  return new Mesh(options);
}

/**
 * A client in a mesh of its own: closing the client closes its mesh.
 * @example const catalog = createClient({ service: "catalog", discovery: staticDiscovery(["http://127.0.0.1:8081"]) });
 */
export function createClient(options: ClientOptions): Client {
  if (!isPlainObject(options)) fail("options", options, "an object with at least { service, discovery }");
  // Validate everything (service included) before the mesh makes anything.
  normalizeOptions(options);
  const { service, ...rest } = options;
  return Mesh.standalone().client(service, rest);
}

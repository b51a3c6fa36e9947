/**
 * `faultProxy()` — a TCP proxy on loopback that puts one fault at a time between a client and a
 * real server: latency, a TCP reset (before the request, or mid-response), a frozen server, a slow
 * body, a refused port. The failures a mesh exists to survive happen in sockets, and only real
 * sockets produce them: a retry classifier must tell ECONNREFUSED (nothing sent: safe to retry,
 * even a POST) from a reset after the server answered (not safe), and a per-try timeout must fire
 * on a server that accepted and went silent. Toxiproxy (Shopify) is the model; this is its
 * in-process subset — plain `node:net` piping, no dependency, so anything over TCP passes through
 * (HTTP/1.1, h2c, TLS end to end).
 *
 * Real time, not an injected `Clock`: the bytes travel real sockets, and a fake clock would only
 * freeze them. The jitter's randomness is injectable.
 */
import { createServer, isIPv6, type Server, type Socket } from "node:net";
import { inspect } from "node:util";
import type { Random } from "../core/clock.js";
import { Connection, type ConnectionEnv, type MutableStats } from "./fault-pipe.js";

/**
 * Delays each chunk `latencyMs + jitterMs × random()` after the proxy reads it. Per chunk, not
 * per request: a response that arrives in five chunks is late by about `latencyMs`, not five
 * times that. The TCP handshake is not delayed (the kernel completes it before the proxy sees it).
 */
export interface LatencyFault {
  readonly kind: "latency";
  /** Milliseconds added to every chunk. */
  readonly latencyMs: number;
  /** Extra uniform delay in [0, jitterMs). Default 0. Order is kept: no chunk overtakes another. */
  readonly jitterMs?: number;
  /** "down" (server → client, the default: a slow server), "up" (client → server) or "both" (adds twice per round trip). */
  readonly direction?: "down" | "up" | "both";
}

/** A TCP RST to the client: at accept (nothing forwarded), or after `afterBytes` bytes of response. */
export interface ResetFault {
  readonly kind: "reset";
  /**
   * Unset (the default): the server never sees the request — a retry is safe. Set: the request is
   * forwarded and the client is reset once this many bytes reached it (0: at the first response
   * byte) — the server did the work and the answer was lost. Counted per connection. The RST
   * follows the last byte by 20 ms, so the client can read the bytes first (an RST makes the
   * receiving kernel drop what the application has not read yet).
   */
  readonly afterBytes?: number;
}

/**
 * A frozen server (SIGSTOP): accepts and reads, forwards nothing either way, never answers. It
 * holds up to 1 MiB per direction and connection, then stops reading, so the sender's TCP window
 * fills as it would against a stopped process.
 */
export interface BlackholeFault {
  readonly kind: "blackhole";
}

/** Throttles server → client bytes to `bytesPerSecond`, sent in ~20 slices a second. */
export interface SlowBodyFault {
  readonly kind: "slowBody";
  readonly bytesPerSecond: number;
}

/**
 * The port stops listening: connects fail with ECONNREFUSED until the fault is lifted, and open
 * connections are closed. Lifting it listens again on the same port; another socket could take
 * the port in between (rare on loopback), and then `clearFault()` rejects.
 */
export interface RefuseFault {
  readonly kind: "refuse";
}

/**
 * What the proxy does to the bytes. One fault at a time; `setFault` replaces the previous one.
 *
 * | fault | new connections | connections already open |
 * |---|---|---|
 * | latency | every chunk delayed | same, from the next chunk read |
 * | slowBody | response bytes throttled | same, from the next chunk read |
 * | reset | RST at accept; nothing reaches the server | RST at once |
 * | reset + afterBytes | request forwarded; RST after `afterBytes` response bytes | RST after `afterBytes` more response bytes |
 * | blackhole | accepted, bytes read and held; the server is not even dialled | frozen: bytes held both ways |
 * | refuse | ECONNREFUSED (the listener is closed) | closed, as a crashed server's are |
 *
 * Lifting a blackhole (a new fault or `clearFault`) releases what it held, in order — a stopped
 * process that resumes — and dials the server for the connections accepted meanwhile; a client
 * that gave up has closed its socket, so nothing of its reaches the server. Bytes already delayed
 * keep their schedule when a latency or slowBody fault is replaced.
 */
export type Fault = LatencyFault | ResetFault | BlackholeFault | SlowBodyFault | RefuseFault;

export interface FaultProxyOptions {
  /** The real server, as an origin: `"http://127.0.0.1:8081"` (http: or https:, no path). */
  readonly target: string | URL;
  /** Interface to listen on. Default `"127.0.0.1"`. */
  readonly host?: string;
  /** Port to listen on. Default 0 (the OS picks one; read it from `url` or `port`). */
  readonly port?: number;
  /** The fault from the start. Default none (a plain pass-through). */
  readonly fault?: Fault;
  /** Uniform numbers in [0, 1) for latency jitter. Default `Math.random`. */
  readonly random?: Random;
}

/** Counters since the proxy started; plain numbers, a fresh object on every read. */
export interface FaultProxyStats {
  /** Client connections accepted. */
  readonly connections: number;
  /** Client connections not yet closed. */
  readonly activeConnections: number;
  /** Bytes forwarded client → server (held or dropped bytes not counted). */
  readonly bytesUp: number;
  /** Bytes forwarded server → client. */
  readonly bytesDown: number;
  /** Client connections the proxy closed with a TCP RST: by a `reset` fault, or because the server refused or reset the proxy. */
  readonly resets: number;
}

export interface FaultProxy {
  /** Where clients connect: the target's scheme with the proxy's address, e.g. `"http://127.0.0.1:40123"`. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** The fault in force (normalized, frozen), or null. */
  readonly fault: Fault | null;
  readonly stats: FaultProxyStats;
  /**
   * Replaces the fault (see `Fault` for new vs. open connections). Throws a TypeError/RangeError
   * at once on an invalid fault, and an Error after `close()`. Every fault but `refuse` is in
   * force when this returns; the promise resolves when the listener has stopped too — await it
   * for `refuse`.
   */
  setFault(fault: Fault): Promise<void>;
  /**
   * Back to a plain pass-through. After `refuse` it listens again on the same port and resolves
   * once listening; it rejects if another socket took the port meanwhile (rare on loopback,
   * since ports from 0 are picked from the ephemeral range). A no-op after `close()`.
   */
  clearFault(): Promise<void>;
  /** Stops listening, destroys every socket and timer it holds, and resolves once they are gone. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts a fault-injecting TCP proxy in front of `target`; point the client at `proxy.url`.
 * Each accepted connection dials the target (a target that refuses or resets the proxy shows up
 * as a reset to the client: the proxy had already accepted). Timers are not unref'd — a delayed
 * byte is something a test awaits — and `close()` clears them all.
 *
 * Defaults: host "127.0.0.1", port 0 (any free port), no fault, `Math.random` for jitter.
 *
 * @example
 * const proxy = await faultProxy({ target: server.url });
 * const client = createClient({ service: "catalog", discovery: staticDiscovery([proxy.url]) });
 * proxy.setFault({ kind: "latency", latencyMs: 200 });   // every response 200 ms late
 * await proxy.setFault({ kind: "refuse" });              // ECONNREFUSED
 * await proxy.clearFault();                              // same URL works again
 * await proxy.close();
 */
export async function faultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const config = normalizeOptions(options);
  let fault: Fault | null = config.fault;
  let closing: Promise<void> | null = null;
  const counters: MutableStats = { connections: 0, activeConnections: 0, bytesUp: 0, bytesDown: 0, resets: 0 };
  const connections = new Set<Connection>();
  const sockets = new Set<Socket>();
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  };
  const release = (connection: Connection): void => void connections.delete(connection);
  const env: ConnectionEnv = {
    target: config.target,
    fault: () => fault,
    random: config.random,
    stats: counters,
    track,
    release,
  };

  const server = createServer({ allowHalfOpen: true }, (client) => {
    track(client);
    counters.connections++;
    counters.activeConnections++;
    client.once("close", () => counters.activeConnections--);
    if (closing !== null || fault?.kind === "refuse") {
      client.destroy();
    } else if (fault?.kind === "reset" && fault.afterBytes === undefined) {
      client.on("error", () => {});
      counters.resets++;
      client.resetAndDestroy();
    } else {
      connections.add(new Connection(client, env));
    }
  });

  await listen(server, config.port, config.host);
  const port = (server.address() as { port: number }).port;
  const host = config.host;
  const url = `${config.protocol}//${isIPv6(host) ? `[${host}]` : host}:${port}`;

  // Listener changes (refuse / lift / close) run one after another; each makes the listener
  // match the current state, so a quick refuse → clear → refuse ends where the last call put it.
  let listenerOps: Promise<void> = Promise.resolve();
  const reconcileListener = (): Promise<void> => {
    const step = listenerOps.then(async () => {
      const wanted = closing === null && fault?.kind !== "refuse";
      if (wanted && !server.listening) await relisten(server, port, host);
      else if (!wanted && server.listening) await stopListening(server);
    });
    listenerOps = step.catch(() => undefined);
    return step;
  };
  /** Destroys every connection and socket the proxy holds; resolves once all are closed. */
  const destroyAll = async (): Promise<void> => {
    for (const connection of connections) connection.destroy(false);
    for (const socket of sockets) socket.destroy();
    await Promise.all([...sockets].map((socket) => new Promise((resolve) => socket.once("close", resolve))));
  };
  const apply = async (next: Fault | null): Promise<void> => {
    fault = next;
    // A refusing port has no connections either: they close as a crashed server's do.
    const gone = next?.kind === "refuse" ? destroyAll() : undefined;
    if (next?.kind !== "refuse") for (const connection of connections) connection.applyFault(next);
    await reconcileListener();
    await gone;
  };
  if (fault?.kind === "refuse") await reconcileListener();

  return {
    url,
    host,
    port,
    get fault() {
      return fault;
    },
    get stats(): FaultProxyStats {
      return { ...counters };
    },
    setFault(next: Fault): Promise<void> {
      const normalized = normalizeFault(next, "fault");
      if (closing !== null) throw new Error("faultProxy: setFault() after close()");
      return apply(normalized);
    },
    clearFault(): Promise<void> {
      return closing !== null ? Promise.resolve() : apply(null);
    },
    close(): Promise<void> {
      closing ??= (async () => {
        const gone = destroyAll();
        await reconcileListener();
        await gone;
      })();
      return closing;
    },
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off("listening", onListening);
      reject(err);
    };
    const onListening = (): void => {
      server.off("error", onError);
      resolve();
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen({ port, host });
  });
}

async function relisten(server: Server, port: number, host: string): Promise<void> {
  try {
    await listen(server, port, host);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new Error(
      `faultProxy: could not listen again on ${host}:${port} after "refuse" (${code}); another socket took the port meanwhile`,
      { cause: err },
    );
  }
}

/** Closes the listener; resolves once the connections it accepted are closed too. */
function stopListening(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

// ── options ──────────────────────────────────────────────────────────────────────────────────

interface ProxyConfig {
  readonly target: { readonly host: string; readonly port: number };
  readonly protocol: "http:" | "https:";
  readonly host: string;
  readonly port: number;
  readonly fault: Fault | null;
  readonly random: Random;
}

const OPTION_KEYS = ["target", "host", "port", "fault", "random"];
const FAULT_KEYS: Readonly<Record<Fault["kind"], readonly string[]>> = {
  latency: ["kind", "latencyMs", "jitterMs", "direction"],
  reset: ["kind", "afterBytes"],
  blackhole: ["kind"],
  slowBody: ["kind", "bytesPerSecond"],
  refuse: ["kind"],
};
/** setTimeout's ceiling (~24.8 days); a longer delay would fire at once. */
const MAX_DELAY_MS = 2_147_483_647;

function normalizeOptions(options: FaultProxyOptions): ProxyConfig {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `faultProxy: options must be an object like { target: "http://127.0.0.1:8081" }; got ${show(options)}`,
    );
  }
  rejectUnknownKeys(options, OPTION_KEYS, "options");
  const { target, protocol } = parseTarget(options.target);
  const host = options.host ?? "127.0.0.1";
  if (typeof host !== "string" || host === "")
    throw new TypeError(`faultProxy: host must be a non-empty string such as "127.0.0.1"; got ${show(host)}`);
  const port = options.port ?? 0;
  if (typeof port !== "number")
    throw new TypeError(`faultProxy: port must be an integer from 0 to 65535 (0: any free port); got ${show(port)}`);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new RangeError(`faultProxy: port must be an integer from 0 to 65535 (0: any free port); got ${show(port)}`);
  const random = options.random ?? Math.random;
  if (typeof random !== "function")
    throw new TypeError(`faultProxy: random must be a function returning numbers in [0, 1); got ${show(random)}`);
  const fault = options.fault === undefined ? null : normalizeFault(options.fault, "fault");
  return { target, protocol, host, port, fault, random };
}

function parseTarget(value: unknown): { target: { host: string; port: number }; protocol: "http:" | "https:" } {
  const allowed = `an http: or https: origin such as "http://127.0.0.1:8081"`;
  if (typeof value !== "string" && !(value instanceof URL))
    throw new TypeError(`faultProxy: target must be ${allowed}; got ${show(value)}`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`faultProxy: target must be ${allowed}; got ${show(String(value))}, which is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`faultProxy: target must be ${allowed}; got protocol ${show(url.protocol)}`);
  }
  if (
    url.username !== "" ||
    url.password !== "" ||
    (url.pathname !== "/" && url.pathname !== "") ||
    url.search !== "" ||
    url.hash !== ""
  ) {
    throw new TypeError(
      `faultProxy: target must be ${allowed} (a TCP proxy has no path, query or credentials); got ${show(url.href)}`,
    );
  }
  const port = url.port === "" ? (url.protocol === "https:" ? 443 : 80) : Number(url.port);
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  return { target: { host, port }, protocol: url.protocol };
}

/** Validates a fault and returns a frozen copy with its defaults filled in. */
function normalizeFault(value: unknown, field: string): Fault {
  const kinds = Object.keys(FAULT_KEYS)
    .map((k) => `"${k}"`)
    .join(", ");
  if (typeof value !== "object" || value === null)
    throw new TypeError(`faultProxy: ${field} must be an object with a kind (${kinds}); got ${show(value)}`);
  const input = value as Record<string, unknown>;
  const kind = input.kind;
  if (typeof kind !== "string" || !Object.hasOwn(FAULT_KEYS, kind))
    throw new TypeError(`faultProxy: ${field}.kind must be one of ${kinds}; got ${show(kind)}`);
  rejectUnknownKeys(input, FAULT_KEYS[kind as Fault["kind"]], `${field} (kind "${kind}")`);
  switch (kind as Fault["kind"]) {
    case "latency": {
      const direction = input.direction ?? "down";
      if (direction !== "down" && direction !== "up" && direction !== "both") {
        throw new TypeError(`faultProxy: ${field}.direction must be "down", "up" or "both"; got ${show(direction)}`);
      }
      const latencyMs = numberIn(input.latencyMs, `${field}.latencyMs`, 0, MAX_DELAY_MS, "milliseconds");
      const jitterMs =
        input.jitterMs === undefined
          ? 0
          : numberIn(input.jitterMs, `${field}.jitterMs`, 0, MAX_DELAY_MS - latencyMs, "milliseconds");
      return Object.freeze({ kind: "latency", latencyMs, jitterMs, direction });
    }
    case "reset": {
      if (input.afterBytes === undefined) return Object.freeze({ kind: "reset" });
      const afterBytes = numberIn(input.afterBytes, `${field}.afterBytes`, 0, Number.MAX_SAFE_INTEGER, "bytes");
      if (!Number.isInteger(afterBytes))
        throw new RangeError(
          `faultProxy: ${field}.afterBytes must be a whole number of bytes >= 0; got ${show(afterBytes)}`,
        );
      return Object.freeze({ kind: "reset", afterBytes });
    }
    case "slowBody": {
      const bytesPerSecond = numberIn(input.bytesPerSecond, `${field}.bytesPerSecond`, 0, Infinity, "bytes a second");
      if (bytesPerSecond === 0)
        throw new RangeError(
          `faultProxy: ${field}.bytesPerSecond must be > 0 (use { kind: "blackhole" } to send nothing); got 0`,
        );
      return Object.freeze({ kind: "slowBody", bytesPerSecond });
    }
    case "blackhole":
      return Object.freeze({ kind: "blackhole" });
    case "refuse":
      return Object.freeze({ kind: "refuse" });
  }
}

function numberIn(value: unknown, field: string, min: number, max: number, unit: string): number {
  const allowed = `a finite number of ${unit} from ${min}${max === Infinity ? " up" : ` to ${max}`}`;
  if (typeof value !== "number") throw new TypeError(`faultProxy: ${field} must be ${allowed}; got ${show(value)}`);
  if (!Number.isFinite(value) || value < min || value > max)
    throw new RangeError(`faultProxy: ${field} must be ${allowed}; got ${show(value)}`);
  return value;
}

function rejectUnknownKeys(value: object, allowed: readonly string[], what: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key))
      throw new TypeError(`faultProxy: ${what} has no option ${show(key)}; allowed: ${allowed.join(", ")}`);
  }
}

function show(value: unknown): string {
  return inspect(value, { depth: 1, breakLength: Infinity });
}

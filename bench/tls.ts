/**
 * What TLS and mTLS with a SPIFFE identity check cost a call, weft against undici given the same
 * TLS options. Target: **weft.request keeps ≥ 0.95× undici `Pool.request`'s keep-alive req/s,
 * over TLS and over mTLS** — the transport adds its stack, not a slower TLS path.
 *
 * Certificates: `makePki()` (test/helpers/certs.ts, the real `openssl`; ECDSA P-256): a CA, the
 * server's certificate (IP SAN 127.0.0.1, URI SAN spiffe://example.org/ns/shop/sa/orders) and a
 * client certificate (URI SAN spiffe://example.org/ns/shop/sa/web). Without `openssl` the part is
 * skipped with a message saying how to install it. The upstreams are `tls-server.ts` children
 * (plain, TLS, mTLS; each counts connections, handshakes, resumed sessions and its own CPU, read at
 * `GET /__stats` on a plain port of its own, so reading makes no handshake).
 *
 * The same TLS options on both sides: undici `new Pool(origin, { connect: { ca [, cert, key] } })`
 * against weft `createClient({ …, tls: { ca [, cert, key, identity] } })`, whose transport is an
 * undici Pool per origin with a `connect` from undici's `buildConnector` and the same options (plus
 * weft's `checkServerIdentity`, which with `identity` checks the SPIFFE ID instead of the IP SAN).
 * weft dispatches on that Pool with a response handler of its own (`pool.dispatch`), so on the
 * same TLS path it may well beat `Pool.request`, whose Readable body it does not build.
 *
 * 1. Keep-alive throughput: 32 requests in flight, interleaved slices as `throughput.ts` does
 *    (`drive` from there: warm-up, then `--duration` cut into `--rounds` slices, order reversed every
 *    other round, 100 ms re-warm before later slices), client CPU per call from `process.cpuUsage()`
 *    around each slice, server CPU per request from the child's counters read around each slice.
 *    The connections are made during the warm-up: the measured slices make none (the `new in slices`
 *    column says so), so this is the cost of TLS records and of weft's stack, not of handshakes.
 *    weft/undici is taken per round, from two slices run back to back, and the median kept.
 * 2. A new connection per call: calls one after another, each on a fresh connection, so the time
 *    of a call is a TCP connect + a TLS handshake + one request. How: every request, weft's and
 *    undici's, carries `connection: close`. undici turns that header into `reset: true`
 *    (lib/core/request.js), sends `connection: close`, and destroys the socket once the reply has
 *    been read; the server closes too; so the next call must connect. weft hands request headers to
 *    the same `pool.request()`, so it does exactly the same. The alternatives do not compare like
 *    with like: `keepAliveTimeoutMs: 1` races (a call that starts within the millisecond reuses
 *    the socket); `pipelining: 0`, undici's switch for "no keep-alive", is refused by weft's
 *    transport (a positive integer); a fresh undici Pool per call builds a fresh connector each
 *    time — with an empty TLS session cache — while weft's connector lives as long as its
 *    transport. Checked at the server: each row's measured calls must match its connections and
 *    its handshakes one for one (the `server saw` column; any mismatch is a FAIL in the summary).
 *    Two kinds of handshake, each against its own server child:
 *    - `full`: the server refuses resumption (`--resume=off`), so every handshake is a full one —
 *      what a client pays for its first connection to a server, and weft after a certificate
 *      rotation (a new connector, so a new session cache).
 *    - `resumed`: the server allows TLS 1.3 session tickets (Node's default); both clients keep the
 *      ticket in their connector's session cache (undici's `buildConnector`, keyed by server name
 *      or host), so each reconnect is an abbreviated handshake — what a client pays to reconnect.
 *      That cache holds each ticket by `WeakRef`, so a GC now and then drops it and the next
 *      reconnect is a full handshake: a handful in 600 calls, in both clients alike (the row passes
 *      its check with ≥ 90 % resumed; the count is printed).
 *    `[ref]` rows: plain HTTP (a TCP connection, no TLS), and undici with `connect: { secureContext }`
 *    made once by `tls.createSecureContext()` — because without one, Node's `tls.connect()` builds
 *    a secure context from the PEM strings for every connection (parses the CA, the certificate and
 *    the key: ~0.3 ms for a CA, ~0.9 ms with a client certificate on this machine). That row is what a
 *    connector built once per material version could save; undici and weft today both pay it.
 *    Two more `resumed` rows, against two TLS servers on one host (127.0.0.1, two ports), the calls
 *    alternating between them: undici with a Pool per origin, and weft with both endpoints and
 *    `roundRobin()`. Each undici Pool builds its own connector, so each origin has its own session
 *    cache; weft's transport has one connector for all its origins, and undici's cache is keyed by
 *    server name or host name, not port — so the resumed share of these two rows is the finding
 *    (not held to the 90 %).
 *    Rows interleaved in `--rounds` rounds (order reversed every other round), `--tls-calls` measured
 *    calls per row over all rounds, a few unmeasured calls first (JIT; a ticket in the cache).
 * 3. The SPIFFE check alone, in memory: what weft's `checkServerIdentity` does with `identity`
 *    (the URI SANs read from the peer certificate, the matcher) next to Node's host-name check that
 *    undici runs, on the server's real `PeerCertificate`. It runs once per handshake.
 *
 * Every call is bounded: the undici Pools have 10 s header and body timeouts, weft calls its 15 s
 * total deadline; the server answers at once. The server children are stopped by pid.
 *
 * Run alone: `npx tsx bench/tls.ts [--quick] [--duration=ms] [--rounds=n] [--tls-calls=n]` (~50 s; ~15 s quick).
 */
import { spawnSync } from "node:child_process";
import tls, { type PeerCertificate } from "node:tls";
import { pathToFileURL } from "node:url";
import { Pool } from "undici";
import { createClient, roundRobin, staticDiscovery, type TlsOptions } from "weft";
import { identityMatcher, spiffeUrisOf } from "../src/security/spiffe.js";
import { getJson, startChild, type ChildServer } from "./child.js";
import {
  fmt,
  machineLine,
  median,
  percentile,
  perRound,
  printTable,
  ratio,
  readSettings,
  type BenchSettings,
} from "./lib.js";
import { closeSlice, drive, tallyStats, timedCall, type Tally } from "./throughput.js";
import type { TlsServerMode, TlsServerStats } from "./tls-server.js";

/** weft.request must keep this share of undici Pool.request's keep-alive req/s, over TLS and over mTLS. */
const TLS_TARGET = 0.95;
/** The identity weft requires of the server: the URI SAN `makePki()` gives the server certificate. */
const SERVER_IDENTITY = "spiffe://example.org/ns/shop/sa/orders";
const CLIENT_SAN = "URI:spiffe://example.org/ns/shop/sa/web";
const OPENSSL_INSTALL = "apt-get install -y openssl";
/** A `resumed` row passes its server-side check when at least this share of its handshakes resumed. */
const RESUMED_SHARE = 0.9;

const TLS_ROW = {
  plain: "undici Pool.request, plain HTTP [ref]",
  undiciTls: "undici Pool.request over TLS",
  weftTls: "weft.request over TLS",
  undiciMtls: "undici Pool.request over mTLS",
  weftMtls: "weft.request over mTLS + SPIFFE identity check",
  contextTls: "undici Pool over TLS, secureContext made once [ref]",
  contextMtls: "undici Pool over mTLS, secureContext made once [ref]",
  undiciTwo: "undici, a Pool per origin, TLS, 2 servers on one host",
  weftTwo: "weft.request over TLS, 2 servers on one host, roundRobin",
} as const;

/** Which row each weft or `[ref]` row is compared with (per round). */
const PAIRS: ReadonlyMap<string, string> = new Map([
  [TLS_ROW.weftTls, TLS_ROW.undiciTls],
  [TLS_ROW.weftMtls, TLS_ROW.undiciMtls],
  [TLS_ROW.contextTls, TLS_ROW.undiciTls],
  [TLS_ROW.contextMtls, TLS_ROW.undiciMtls],
  [TLS_ROW.weftTwo, TLS_ROW.undiciTwo],
]);

export type Handshake = "full" | "resumed" | "none";

/** A ratio of two rows as the median of per-round ratios, with its range and the pooled ratio. */
export interface RoundRatio {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly pooled: number;
  readonly rounds: number;
}

export interface TlsThroughputRow {
  readonly name: string;
  readonly reqPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  /** Client CPU (user + system) per call, µs. */
  readonly cpuUsPerCall: number;
  /** The server child's CPU per request it answered, µs. */
  readonly serverCpuUsPerCall: number;
  /** Connections the server accepted during the measured slices (keep-alive: 0 expected). */
  readonly newConnections: number;
  /** Connections the row opened in all, warm-ups included (64 in practice: the pools' limit). */
  readonly connections: number;
  /** req/s of each slice, in round order. */
  readonly slices: readonly number[];
}

export interface NewConnectionRow {
  readonly name: string;
  readonly handshake: Handshake;
  readonly calls: number;
  /** Mean time of a call (connect + handshake + one request), ms. */
  readonly msPerConnection: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly perSecond: number;
  readonly cpuUsPerConnection: number;
  readonly serverCpuUsPerConnection: number;
  readonly errors: number;
  /** What the server counted during the measured calls. */
  readonly server: {
    readonly connections: number;
    readonly handshakes: number;
    readonly resumed: number;
    readonly clientCerts: number;
    readonly requests: number;
  };
  /** The server saw one new connection (and, over TLS, one handshake of the intended kind) per measured call. */
  readonly verified: boolean;
  /** Connections per second of each round. */
  readonly slices: readonly number[];
}

export interface TlsResult {
  /** Set when the part could not run; says why and how to fix it. */
  readonly skipped?: string;
  readonly concurrency: number;
  readonly throughput: readonly TlsThroughputRow[];
  readonly connections: readonly NewConnectionRow[];
  /** ns per check, in memory: weft's SPIFFE identity check, and Node's host-name check. */
  readonly identityCheck: { readonly spiffeNs: number; readonly hostNameNs: number };
}

interface Upstream {
  readonly mode: TlsServerMode;
  readonly handshake: Handshake;
  readonly origin: string;
  readonly port: number;
  readonly statsPort: number;
  readonly child: ChildServer;
}

interface Target {
  readonly name: string;
  /** The server(s) the row calls; counters are summed over them. Mode and handshake kind: the first's. */
  readonly upstreams: readonly Upstream[];
  readonly call: () => Promise<unknown>;
  readonly close: () => Promise<unknown>;
  /** False for the two-endpoint rows, whose resumed share is the finding, not a check of the method. */
  readonly checkResumed?: boolean;
}

const keyOf = (t: Target): string => `${t.name} (${(t.upstreams[0] as Upstream).handshake})`;

interface Pki {
  readonly ca: string;
  readonly client: { readonly key: string; readonly cert: string };
  readonly dir: string;
}

function opensslMissing(): string | undefined {
  const found = spawnSync("openssl", ["version"], { stdio: "ignore" }).status === 0;
  return found
    ? undefined
    : `openssl not on PATH (the test certificates are made with it) — install with: ${OPENSSL_INSTALL}`;
}

async function startUpstream(mode: TlsServerMode, handshake: Handshake, pkiDir: string): Promise<Upstream> {
  const child = await startChild("./tls-server.ts", [
    `--mode=${mode}`,
    `--pki=${pkiDir}`,
    `--resume=${handshake === "full" ? "off" : "on"}`,
  ]);
  const [port, statsPort] = child.ports as [number, number];
  return {
    mode,
    handshake,
    origin: `${mode === "plain" ? "http" : "https"}://127.0.0.1:${port}`,
    port,
    statsPort,
    child,
  };
}

type Counters = { -readonly [K in Exclude<keyof TlsServerStats, "mode">]: number };

/** The counters of the target's server(s), summed. */
async function readServer(upstreams: readonly Upstream[]): Promise<Counters> {
  const all = await Promise.all(upstreams.map((u) => getJson<TlsServerStats>(u.statsPort, "/__stats")));
  const sum = { connections: 0, handshakes: 0, resumed: 0, clientCerts: 0, requests: 0, cpuUs: 0 };
  for (const one of all) for (const key of Object.keys(sum) as (keyof Counters)[]) sum[key] += one[key];
  return sum;
}

/** An undici Pool with the given `connect` options; with `fresh`, every request says `connection: close` (a new connection per call). */
function undiciTarget(
  name: string,
  upstream: Upstream,
  connect: Record<string, unknown> | undefined,
  fresh: boolean,
): Target {
  const pool = new Pool(upstream.origin, {
    connections: 64,
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
    ...(connect === undefined ? {} : { connect }),
  });
  const options = fresh
    ? { path: "/", method: "GET" as const, headers: { connection: "close" } }
    : { path: "/", method: "GET" as const };
  return {
    name,
    upstreams: [upstream],
    call: async () => (await pool.request(options)).body.text(),
    close: () => pool.close(),
  };
}

/** A weft client with the default stack and `tls` (the shorthand for `undiciTransport({ tls })`). */
function weftTarget(name: string, upstream: Upstream, tlsOptions: TlsOptions, fresh: boolean): Target {
  const client = createClient({
    service: `bench-${upstream.mode}`,
    discovery: staticDiscovery([upstream.origin]),
    tls: tlsOptions,
  });
  const init = fresh ? { path: "/", headers: { connection: "close" } } : { path: "/" };
  return {
    name,
    upstreams: [upstream],
    call: async () => (await client.request(init)).text(),
    close: () => client.close(),
  };
}

/**
 * Two servers on one host (127.0.0.1, two ports), a new connection per call, alternating:
 * undici with a Pool per origin (each Pool builds its connector, so each origin has its own TLS
 * session cache), against weft with both endpoints and `roundRobin()` (one connector for the
 * transport, whose cache undici keys by server name or host name — not by port).
 */
function twoEndpointTargets(pki: Pki, a: Upstream, b: Upstream): Target[] {
  const poolOptions = { connect: { ca: pki.ca }, connections: 64, headersTimeout: 10_000, bodyTimeout: 10_000 };
  const pools = [new Pool(a.origin, poolOptions), new Pool(b.origin, poolOptions)];
  let next = 0;
  const options = { path: "/", method: "GET" as const, headers: { connection: "close" } };
  const client = createClient({
    service: "bench-two",
    discovery: staticDiscovery([a.origin, b.origin]),
    balancer: roundRobin(),
    tls: { ca: pki.ca },
  });
  return [
    {
      name: TLS_ROW.undiciTwo,
      upstreams: [a, b],
      checkResumed: false,
      call: async () => (await (pools[next++ % 2] as Pool).request(options)).body.text(),
      close: () => Promise.all(pools.map((p) => p.close())),
    },
    {
      name: TLS_ROW.weftTwo,
      upstreams: [a, b],
      checkResumed: false,
      call: async () => (await client.request({ path: "/", headers: { connection: "close" } })).text(),
      close: () => client.close(),
    },
  ];
}

/** The five throughput rows, or the six new-connection rows for one kind of handshake (plus plain). */
function targets(pki: Pki, up: { plain?: Upstream; tls: Upstream; mtls: Upstream }, fresh: boolean): Target[] {
  const mtlsPem = { ca: pki.ca, cert: pki.client.cert, key: pki.client.key };
  const list: Target[] = [];
  if (up.plain !== undefined) list.push(undiciTarget(TLS_ROW.plain, up.plain, undefined, fresh));
  list.push(
    undiciTarget(TLS_ROW.undiciTls, up.tls, { ca: pki.ca }, fresh),
    weftTarget(TLS_ROW.weftTls, up.tls, { ca: pki.ca }, fresh),
    undiciTarget(TLS_ROW.undiciMtls, up.mtls, mtlsPem, fresh),
    weftTarget(TLS_ROW.weftMtls, up.mtls, { ...mtlsPem, identity: SERVER_IDENTITY }, fresh),
  );
  if (fresh) {
    list.push(
      undiciTarget(TLS_ROW.contextTls, up.tls, { secureContext: tls.createSecureContext({ ca: pki.ca }) }, fresh),
      undiciTarget(TLS_ROW.contextMtls, up.mtls, { secureContext: tls.createSecureContext(mtlsPem) }, fresh),
    );
  }
  return list;
}

async function closeAll(list: readonly Target[]): Promise<void> {
  for (const t of list) await t.close().catch((error: unknown) => console.error(`closing ${t.name}: ${String(error)}`));
}

function reportErrors(name: string, tally: Tally): void {
  if (tally.errors > 0) console.error(`  ${name}: ${tally.errors} errors, first: ${String(tally.firstError)}`);
}

async function runKeepAlive(settings: BenchSettings, list: readonly Target[]): Promise<TlsThroughputRow[]> {
  const tallies = new Map<string, Tally>(
    list.map((t) => [t.name, { count: 0, errors: 0, elapsedMs: 0, latencies: [], slices: [] }]),
  );
  const server = new Map(list.map((t) => [t.name, { cpuUs: 0, requests: 0, connections: 0, opened: 0 }]));
  const sliceMs = settings.durationMs / settings.rounds;
  for (let round = 0; round < settings.rounds; round++) {
    for (const t of round % 2 === 0 ? list : [...list].reverse()) {
      const warm = await readServer(t.upstreams);
      await drive(
        t.call,
        settings.concurrency,
        round === 0 ? settings.warmupMs : Math.min(100, settings.warmupMs),
        null,
      );
      const before = await readServer(t.upstreams);
      server.get(t.name)!.opened += before.connections - warm.connections;
      await drive(t.call, settings.concurrency, sliceMs, tallies.get(t.name)!);
      const after = await readServer(t.upstreams);
      const s = server.get(t.name)!;
      s.cpuUs += after.cpuUs - before.cpuUs;
      s.requests += after.requests - before.requests;
      s.connections += after.connections - before.connections;
      s.opened += after.connections - before.connections;
    }
  }
  return list.map((t) => {
    const tally = tallies.get(t.name)!;
    const s = server.get(t.name)!;
    return {
      name: t.name,
      ...tallyStats(t.name, tally),
      cpuUsPerCall: (tally.cpuUs ?? Number.NaN) / tally.count,
      serverCpuUsPerCall: s.cpuUs / s.requests,
      newConnections: s.connections,
      connections: s.opened,
      slices: tally.slices ?? [],
    };
  });
}

/** `n` calls one after another; counts, latencies, client CPU and elapsed time into `tally`. */
async function sequential(call: () => Promise<unknown>, n: number, tally: Tally | null): Promise<void> {
  const start = performance.now();
  const cpuBefore = process.cpuUsage();
  const before = tally?.count ?? 0;
  for (let i = 0; i < n; i++) await timedCall(call, tally);
  closeSlice(tally, start, cpuBefore, before);
}

async function runNewConnections(settings: BenchSettings, list: readonly Target[]): Promise<NewConnectionRow[]> {
  const perRound = Math.max(1, Math.ceil(settings.tlsCalls / settings.rounds));
  const warmup = Math.max(10, Math.round(perRound / 5));
  const tallies = new Map<string, Tally>(
    list.map((t) => [keyOf(t), { count: 0, errors: 0, elapsedMs: 0, latencies: [], slices: [] }]),
  );
  const zero: Counters = { cpuUs: 0, connections: 0, handshakes: 0, resumed: 0, clientCerts: 0, requests: 0 };
  const server = new Map(list.map((t) => [keyOf(t), { ...zero }]));
  for (const t of list) await sequential(t.call, warmup, null);
  for (let round = 0; round < settings.rounds; round++) {
    for (const t of round % 2 === 0 ? list : [...list].reverse()) {
      const before = await readServer(t.upstreams);
      await sequential(t.call, perRound, tallies.get(keyOf(t))!);
      const after = await readServer(t.upstreams);
      const s = server.get(keyOf(t))!;
      for (const key of Object.keys(zero) as (keyof Counters)[]) s[key] += after[key] - before[key];
    }
  }
  return list.map((t) => {
    const upstream = t.upstreams[0] as Upstream;
    const tally = tallies.get(keyOf(t))!;
    const { cpuUs, ...counts } = server.get(keyOf(t))!;
    reportErrors(keyOf(t), tally);
    const calls = tally.count + tally.errors;
    // Resumed rows: undici's session cache holds a ticket by WeakRef, so a GC now and then drops
    // it and that one reconnect is a full handshake (a handful in 600); 90 % resumed is the bar.
    const kindOk =
      upstream.handshake === "resumed"
        ? t.checkResumed === false || counts.resumed >= RESUMED_SHARE * calls
        : counts.resumed === 0;
    const tlsOk =
      upstream.mode === "plain" ||
      (counts.handshakes === calls && kindOk && (upstream.mode !== "mtls" || counts.clientCerts === calls));
    const sorted = Float64Array.from(tally.latencies).sort();
    return {
      name: t.name,
      handshake: upstream.handshake,
      calls,
      msPerConnection: tally.elapsedMs / calls,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      perSecond: (calls * 1000) / tally.elapsedMs,
      cpuUsPerConnection: (tally.cpuUs ?? Number.NaN) / calls,
      serverCpuUsPerConnection: cpuUs / calls,
      errors: tally.errors,
      server: counts,
      verified: tally.errors === 0 && counts.connections === calls && counts.requests === calls && tlsOk,
      slices: tally.slices ?? [],
    };
  });
}

/** ns per call of weft's SPIFFE check and of Node's host-name check, on the server's real certificate. */
async function timeIdentityCheck(upstream: Upstream, ca: string, rounds: number): Promise<TlsResult["identityCheck"]> {
  const cert = await new Promise<PeerCertificate>((resolve, reject) => {
    const socket = tls.connect(
      { host: "127.0.0.1", port: upstream.port, ca, checkServerIdentity: () => undefined },
      () => {
        const peer = socket.getPeerCertificate(true);
        socket.destroy();
        resolve(peer);
      },
    );
    socket.once("error", reject);
    socket.setTimeout(5_000, () => socket.destroy(new Error("TLS connect for the identity check timed out")));
  });
  // What TlsClient's checkServerIdentity runs when `identity` is set (src/transport/tls.ts).
  const matches = identityMatcher([SERVER_IDENTITY], "tls.identity");
  const spiffe = (): boolean => {
    const presented = spiffeUrisOf(cert.subjectaltname);
    return presented.length === 1 && matches(presented[0] as string);
  };
  const hostName = (): boolean => tls.checkServerIdentity("127.0.0.1", cert) === undefined;
  if (!spiffe() || !hostName())
    throw new Error("identity check bench: the server certificate failed a check it should pass");
  const n = 20_000;
  const time = (fn: () => boolean): number => {
    const t = performance.now();
    let ok = 0;
    for (let i = 0; i < n; i++) if (fn()) ok++;
    if (ok !== n) throw new Error("identity check bench: a check failed");
    return ((performance.now() - t) * 1e6) / n;
  };
  const a: number[] = [];
  const b: number[] = [];
  time(spiffe);
  time(hostName);
  for (let r = 0; r < Math.max(3, rounds); r++) {
    a.push(time(spiffe));
    b.push(time(hostName));
  }
  return { spiffeNs: median(a), hostNameNs: median(b) };
}

export async function runTls(settings: BenchSettings): Promise<TlsResult> {
  const empty = {
    concurrency: settings.concurrency,
    throughput: [],
    connections: [],
    identityCheck: { spiffeNs: Number.NaN, hostNameNs: Number.NaN },
  };
  const missing = opensslMissing();
  if (missing !== undefined) return { ...empty, skipped: missing };
  // Imported only now: certs.ts checks for openssl when it loads (and throws in CI without it).
  const { makePki } = await import("../test/helpers/certs.js");
  const made = makePki();
  const pki: Pki = { ca: made.ca, client: made.client("web", CLIENT_SAN), dir: made.dir };
  const upstreams: Upstream[] = [];
  let open: Target[] = [];
  try {
    const settled = await Promise.allSettled([
      startUpstream("plain", "none", pki.dir),
      startUpstream("tls", "resumed", pki.dir),
      startUpstream("mtls", "resumed", pki.dir),
      startUpstream("tls", "full", pki.dir),
      startUpstream("mtls", "full", pki.dir),
      startUpstream("tls", "resumed", pki.dir),
    ]);
    // Every child that did start is stopped in `finally`, even when another failed to.
    for (const s of settled) if (s.status === "fulfilled") upstreams.push(s.value);
    const failed = settled.find((s) => s.status === "rejected");
    if (failed !== undefined) throw failed.reason;
    const [plain, tlsResumed, mtlsResumed, tlsFull, mtlsFull, tlsSecond] = upstreams as [
      Upstream,
      Upstream,
      Upstream,
      Upstream,
      Upstream,
      Upstream,
    ];

    open = targets(pki, { plain, tls: tlsResumed, mtls: mtlsResumed }, false);
    const throughput = await runKeepAlive(settings, open);
    await closeAll(open);

    open = [
      ...targets(pki, { plain, tls: tlsFull, mtls: mtlsFull }, true),
      ...targets(pki, { tls: tlsResumed, mtls: mtlsResumed }, true),
      ...twoEndpointTargets(pki, tlsResumed, tlsSecond),
    ];
    const connections = await runNewConnections(settings, open);
    await closeAll(open);
    open = [];

    const identityCheck = await timeIdentityCheck(tlsResumed, pki.ca, settings.rounds);
    return { concurrency: settings.concurrency, throughput, connections, identityCheck };
  } finally {
    await closeAll(open);
    for (const u of upstreams) await u.child.stop();
    made.close();
  }
}

/** `a` / `b` per round (lib.ts), and the pooled ratio (the verdict when no round has both). */
function rowsPerRound(
  a: { slices: readonly number[] } | undefined,
  b: { slices: readonly number[] } | undefined,
  pooled: number,
): RoundRatio {
  const { ratios, median, min, max } = perRound(a?.slices ?? [], b?.slices ?? []);
  return { median: ratios.length === 0 ? pooled : median, min, max, pooled, rounds: ratios.length };
}

function roundText(r: RoundRatio): string {
  if (r.rounds < 2) return `${r.median.toFixed(2)}×`;
  return `${r.median.toFixed(2)}× (median of ${r.rounds} rounds, range ${r.min.toFixed(2)}–${r.max.toFixed(2)}; pooled ${r.pooled.toFixed(2)}×)`;
}

/** weft (or a `[ref]` row) against its undici row, keep-alive req/s. */
function throughputRatio(result: TlsResult, name: string): RoundRatio {
  const row = result.throughput.find((r) => r.name === name);
  const base = result.throughput.find((r) => r.name === PAIRS.get(name));
  return rowsPerRound(row, base, (row?.reqPerSec ?? Number.NaN) / (base?.reqPerSec ?? Number.NaN));
}

/** weft (or a `[ref]` row) against its undici row, new connections per second, for one kind of handshake. */
function connectionRatio(result: TlsResult, name: string, handshake: Handshake): RoundRatio {
  const row = result.connections.find((r) => r.name === name && r.handshake === handshake);
  const base = result.connections.find((r) => r.name === PAIRS.get(name) && r.handshake === handshake);
  return rowsPerRound(row, base, (row?.perSecond ?? Number.NaN) / (base?.perSecond ?? Number.NaN));
}

function short(r: RoundRatio): string {
  return r.rounds < 2 ? `${r.median.toFixed(2)}×` : `${r.median.toFixed(2)}× (${r.min.toFixed(2)}–${r.max.toFixed(2)})`;
}

export function printTls(result: TlsResult): void {
  if (result.skipped !== undefined) {
    console.log(`(TLS part skipped: ${result.skipped})`);
    return;
  }
  const plain = result.throughput.find((r) => r.name === TLS_ROW.plain)?.reqPerSec ?? Number.NaN;
  printTable(
    [
      `keep-alive, concurrency ${result.concurrency}`,
      "req/s",
      "p50 ms",
      "p99 ms",
      "× plain",
      "per-round × undici",
      "CPU µs/call",
      "server CPU µs/req",
      "conns",
      "new in slices",
      "errors",
    ],
    result.throughput.map((r) => [
      r.name,
      fmt(r.reqPerSec),
      fmt(r.p50Ms, 2),
      fmt(r.p99Ms, 2),
      ratio(r.reqPerSec, plain),
      PAIRS.has(r.name) ? short(throughputRatio(result, r.name)) : "",
      fmt(r.cpuUsPerCall, 1),
      fmt(r.serverCpuUsPerCall, 1),
      String(r.connections),
      String(r.newConnections),
      String(r.errors),
    ]),
  );
  console.log(
    "(CPU µs/call: this process; server CPU: the server child's, per request it answered; conns: connections the row opened, warm-ups included; new in slices: of those, during the measured slices)\n",
  );
  printTable(
    [
      "a new connection per call, sequential",
      "handshake",
      "ms/conn",
      "p99 ms",
      "conn/s",
      "per-round × undici",
      "CPU µs/conn",
      "server CPU µs/conn",
      "server saw",
      "errors",
    ],
    result.connections.map((r) => [
      r.name,
      r.handshake,
      fmt(r.msPerConnection, 3),
      fmt(r.p99Ms, 2),
      fmt(r.perSecond),
      PAIRS.has(r.name) ? short(connectionRatio(result, r.name, r.handshake)) : "",
      fmt(r.cpuUsPerConnection, 0),
      fmt(r.serverCpuUsPerConnection, 0),
      (r.handshake === "none"
        ? `${r.server.connections} TCP`
        : `${r.server.handshakes} TLS, ${r.server.resumed} resumed`) + (r.verified ? "" : " ✗"),
      String(r.errors),
    ]),
  );
  console.log(
    `(each call: TCP connect + TLS handshake + one request with "connection: close"; server saw: the handshakes and resumed sessions it counted for the measured calls, ✗ when not one per call or, for resumed, < ${RESUMED_SHARE * 100} % resumed)`,
  );
  const check = result.identityCheck;
  console.log(
    `(in memory, once per handshake: weft's SPIFFE identity check ${fmt(check.spiffeNs)} ns, Node's host-name check (undici's) ${fmt(check.hostNameNs)} ns)`,
  );
}

/** The summary lines: the two targets, then what a call and a new connection cost. */
export function tlsSummary(result: TlsResult): string[] {
  if (result.skipped !== undefined) return [`[skip] TLS: ${result.skipped}`];
  const mark = (ok: boolean): string => (ok ? "PASS" : "FAIL");
  const lines: string[] = [];
  const overTls = throughputRatio(result, TLS_ROW.weftTls);
  const overMtls = throughputRatio(result, TLS_ROW.weftMtls);
  lines.push(
    `[${mark(overTls.median >= TLS_TARGET)}] weft over TLS vs undici Pool.request over TLS, keep-alive req/s: ${roundText(overTls)}; target ≥ ${TLS_TARGET.toFixed(2)}×`,
  );
  lines.push(
    `[${mark(overMtls.median >= TLS_TARGET)}] weft over mTLS + SPIFFE identity vs undici Pool.request over mTLS, keep-alive req/s: ${roundText(overMtls)}; target ≥ ${TLS_TARGET.toFixed(2)}×`,
  );
  const cpu = (name: string): number => result.throughput.find((r) => r.name === name)?.cpuUsPerCall ?? Number.NaN;
  const delta = (a: number, b: number): string => `${a - b < 0 ? "−" : "+"}${fmt(Math.abs(a - b), 1)}`;
  lines.push(
    `[info] client CPU per call: TLS weft ${fmt(cpu(TLS_ROW.weftTls), 1)} vs undici ${fmt(cpu(TLS_ROW.undiciTls), 1)} µs (${delta(cpu(TLS_ROW.weftTls), cpu(TLS_ROW.undiciTls))}); ` +
      `mTLS weft ${fmt(cpu(TLS_ROW.weftMtls), 1)} vs undici ${fmt(cpu(TLS_ROW.undiciMtls), 1)} µs (${delta(cpu(TLS_ROW.weftMtls), cpu(TLS_ROW.undiciMtls))}); ` +
      `plain undici ${fmt(cpu(TLS_ROW.plain), 1)} µs (TLS adds ${fmt(cpu(TLS_ROW.undiciTls) - cpu(TLS_ROW.plain), 1)})`,
  );
  const conn = (name: string, handshake: Handshake): NewConnectionRow | undefined =>
    result.connections.find((r) => r.name === name && r.handshake === handshake);
  const ms = (name: string, handshake: Handshake): string =>
    fmt(conn(name, handshake)?.msPerConnection ?? Number.NaN, 2);
  const plainMs = conn(TLS_ROW.plain, "none")?.msPerConnection ?? Number.NaN;
  for (const handshake of ["full", "resumed"] as const) {
    lines.push(
      `[info] new connection, ${handshake} handshake, ms per call (weft / undici, conn/s ratio): ` +
        `TLS ${ms(TLS_ROW.weftTls, handshake)} / ${ms(TLS_ROW.undiciTls, handshake)} = ${short(connectionRatio(result, TLS_ROW.weftTls, handshake))}; ` +
        `mTLS + identity ${ms(TLS_ROW.weftMtls, handshake)} / ${ms(TLS_ROW.undiciMtls, handshake)} = ${short(connectionRatio(result, TLS_ROW.weftMtls, handshake))}` +
        (handshake === "full" ? `; plain HTTP ${fmt(plainMs, 2)} ms [ref]` : ""),
    );
  }
  const saved = (name: string, base: string): string => {
    const a = conn(name, "full");
    const b = conn(base, "full");
    return a === undefined || b === undefined
      ? "—"
      : `${fmt(b.msPerConnection - a.msPerConnection, 2)} ms, ${fmt(b.cpuUsPerConnection - a.cpuUsPerConnection)} µs CPU`;
  };
  lines.push(
    `[info] a secureContext made once instead of per connection saves, per full handshake: TLS ${saved(TLS_ROW.contextTls, TLS_ROW.undiciTls)}; mTLS ${saved(TLS_ROW.contextMtls, TLS_ROW.undiciMtls)} ` +
      `(undici rebuilds it from the PEMs for every connection; weft makes it once per certificate version)`,
  );
  const unverified = result.connections.filter((r) => !r.verified);
  const calls = result.connections.reduce((sum, r) => sum + r.calls, 0);
  lines.push(
    `[${mark(unverified.length === 0)}] new-connection rows checked at the server: ${unverified.length === 0 ? `every one of ${fmt(calls)} calls opened a new connection with a handshake of its row's kind` : `not one handshake per call in ${unverified.map((r) => `${r.name} (${r.handshake})`).join(", ")}`}`,
  );
  const one = conn(TLS_ROW.weftTls, "resumed");
  const two = [TLS_ROW.weftTwo, TLS_ROW.undiciTwo].map((name) => conn(name, "resumed"));
  if (one !== undefined && two[0] !== undefined && two[1] !== undefined) {
    const share = (r: NewConnectionRow): string => `${((r.server.resumed / r.calls) * 100).toFixed(0)} %`;
    const lost = two[0].server.resumed < RESUMED_SHARE * two[0].calls;
    lines.push(
      `[${lost ? "warn" : "info"}] session resumption with 2 servers on one host: weft ${share(two[0])} of reconnects resumed (${ms(TLS_ROW.weftTwo, "resumed")} ms per call), ` +
        `undici with a Pool per origin ${share(two[1])} (${ms(TLS_ROW.undiciTwo, "resumed")} ms); weft with 1 server ${share(one)}` +
        (lost
          ? " — weft's one connector per transport keys its TLS session cache by host name, not origin: the servers overwrite each other's tickets"
          : ""),
    );
  }
  lines.push(
    `[info] SPIFFE identity check: ${fmt(result.identityCheck.spiffeNs)} ns per handshake vs ${fmt(result.identityCheck.hostNameNs)} ns for Node's host-name check; nothing per request`,
  );
  return lines;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const settings = readSettings();
  const started = performance.now();
  console.log(`weft TLS bench — ${machineLine()}${settings.quick ? " (quick)" : ""}\n`);
  const result = await runTls(settings);
  printTls(result);
  console.log();
  for (const line of tlsSummary(result)) console.log(line);
  console.log(`\n(total ${((performance.now() - started) / 1000).toFixed(1)} s)`);
}

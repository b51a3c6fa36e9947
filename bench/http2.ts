/**
 * HTTP/2: what weft's `http2Transport()` gives a call on loopback, against undici's own HTTP/2 and
 * against weft over HTTP/1.1. Target: **weft over h2 (TLS) keeps ≥ 0.9× undici's h2 Pool's req/s
 * with the same TLS** — the mesh adds its stack, not a slower HTTP/2 path.
 *
 * Upstreams: `http2-server.ts` in a child process (`node:http2`, h2c and TLS with ALPN h2, the
 * certificate of `makePki()` from test/helpers/certs.ts — the real `openssl`; without it the part
 * is skipped, saying how to install it), and `server.ts` (`node:http`, HTTP/1.1) for the HTTP/1.1
 * row. Every answer is a 2-byte body, except the 1 MiB rows'.
 *
 * Rows, 32 requests in flight (`--concurrency`), interleaved slices as `throughput.ts` runs them
 * (`drive` from there: a warm-up, then `--duration` cut into `--rounds` slices, the order reversed
 * every other round, a 100 ms re-warm before later slices), client CPU per call from
 * `process.cpuUsage()` around each slice:
 * - `undici h2 Pool (allowH2, TLS)`: `new Pool(origin, { allowH2: true, connections: 1,
 *   pipelining: 100, connect: { ca } })` — one connection, 100 streams, its best setting here:
 *   undici's default `pipelining: 1` also means one stream at a time per h2 connection.
 * - `weft http2Transport (TLS)`: `createClient` with the default stack and
 *   `http2Transport({ tls: { ca } })`.
 * - `weft http2Transport (h2c)`: the same over h2c with prior knowledge.
 * - `weft HTTP/1.1 (undiciTransport)`: the default client against the HTTP/1.1 server (64
 *   keep-alive connections): for reference, another server.
 * - `node:http2 direct` (h2c, TLS) `[ref]`: a bare `session.request()` reading the body — the floor
 *   under weft's transport; not a target.
 * - `1 MiB answers` (`GET /big`, 8 in flight): undici's h2 Pool and weft's TLS client above, read whole; and
 *   weft with HTTP/2's default 64 KiB windows (`[ref]`): the flow-control windows' share of bulk
 *   speed, in the same run (undici 7's h2 opens 256 KiB a stream and 512 KiB the connection).
 * The sessions column is what the server counted for each row (the h2 rows must stay at 1).
 *
 * Run alone: `npx tsx bench/http2.ts [--quick] [--duration=ms] [--rounds=n] [--concurrency=n]`.
 */
import { spawnSync } from "node:child_process";
import http2 from "node:http2";
import { pathToFileURL } from "node:url";
import { Pool } from "undici";
import { createClient, http2Transport, staticDiscovery } from "weft";
import { getJson, startChild, type ChildServer } from "./child.js";
import { fmt, machineLine, perRound, printTable, ratio, readSettings, type BenchSettings } from "./lib.js";
import type { Http2ServerStats } from "./http2-server.js";
import { drive, startServer, tallyStats, type Tally } from "./throughput.js";

/** weft over h2 (TLS) must keep this share of undici's h2 Pool's req/s, same TLS. */
const H2_TARGET = 0.9;
const OPENSSL_INSTALL = "apt-get install -y openssl";

const H2_ROW = {
  undici: "undici h2 Pool (allowH2, TLS)",
  weftTls: "weft http2Transport (TLS)",
  weftH2c: "weft http2Transport (h2c)",
  weftH1: "weft HTTP/1.1 (undiciTransport)",
  nodeTls: "node:http2 direct (TLS) [ref]",
  nodeH2c: "node:http2 direct (h2c) [ref]",
  undiciBig: "undici h2 Pool, 1 MiB answers (TLS)",
  weftBig: "weft http2Transport, 1 MiB answers (TLS)",
  weftBigSmallWindows: "weft http2Transport, 1 MiB answers, 64 KiB windows (TLS) [ref]",
} as const;

export interface Http2Row {
  readonly name: string;
  readonly reqPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  /** Client CPU (user + system) per call, µs. */
  readonly cpuUsPerCall: number;
  /** Sessions (h2) the server accepted for this row, warm-ups included; NaN for HTTP/1.1. */
  readonly sessions: number;
  /** req/s of each slice, in round order. */
  readonly slices: readonly number[];
}

export interface Http2Result {
  /** Set when the part could not run; says why and how to fix it. */
  readonly skipped?: string;
  readonly rows: readonly Http2Row[];
  readonly concurrency: number;
}

interface Target {
  readonly name: string;
  /** Which of the server's session counters this row moves (0: h2c, 1: TLS), or null (HTTP/1.1). */
  readonly counter: 0 | 1 | null;
  readonly call: () => Promise<unknown>;
  readonly close: () => Promise<unknown>;
  /** Requests in flight for this row, when not `--concurrency`. */
  readonly concurrency?: number;
}

/** In flight for the 1 MiB rows: 8 MiB of answers at once, a session's whole window. */
const BIG_CONCURRENCY = 8;

/** A bare `node:http2` session (made on the first call): one stream per call, the body read to its end. */
function nodeTarget(name: string, counter: 0 | 1, origin: string, ca: string | undefined): Target {
  let session: http2.ClientHttp2Session | undefined;
  const headers = { ":method": "GET", ":path": "/" };
  const options = { endStream: true };
  return {
    name,
    counter,
    call: () =>
      new Promise<void>((resolve, reject) => {
        if (session === undefined) {
          session = http2.connect(origin, ca === undefined ? {} : { ca });
          session.on("error", () => {});
        }
        const stream = session.request(headers, options);
        stream.on("data", () => {});
        stream.on("end", resolve);
        stream.on("error", reject);
      }),
    close: () => new Promise<void>((resolve) => (session === undefined ? resolve() : session.close(resolve))),
  };
}

function targets(ports: { h2c: number; tls: number; h1: number }, ca: string): Target[] {
  const tlsOrigin = `https://127.0.0.1:${ports.tls}`;
  const h2cOrigin = `http://127.0.0.1:${ports.h2c}`;
  const pool = new Pool(tlsOrigin, { allowH2: true, connections: 1, pipelining: 100, connect: { ca } });
  const weftTls = createClient({
    service: "bench-h2-tls",
    discovery: staticDiscovery([tlsOrigin]),
    transport: http2Transport({ tls: { ca } }),
  });
  const weftH2c = createClient({
    service: "bench-h2c",
    discovery: staticDiscovery([h2cOrigin]),
    transport: http2Transport(),
  });
  const weftH1 = createClient({ service: "bench-h1", discovery: staticDiscovery([`http://127.0.0.1:${ports.h1}`]) });
  // HTTP/2's default windows (65 535 bytes), as a bare node:http2 session keeps them.
  const weftSmallWindows = createClient({
    service: "bench-h2-tls-64k",
    discovery: staticDiscovery([tlsOrigin]),
    transport: http2Transport({ tls: { ca }, streamWindowBytes: 65_535, connectionWindowBytes: 65_535 }),
  });
  const big = { path: "/big", method: "GET" } as const;
  return [
    {
      name: H2_ROW.undici,
      counter: 1,
      call: async () => (await pool.request({ path: "/", method: "GET" })).body.text(),
      close: () => pool.close(),
    },
    {
      name: H2_ROW.weftTls,
      counter: 1,
      call: async () => (await weftTls.request({ path: "/" })).text(),
      close: () => weftTls.close(),
    },
    {
      name: H2_ROW.weftH2c,
      counter: 0,
      call: async () => (await weftH2c.request({ path: "/" })).text(),
      close: () => weftH2c.close(),
    },
    {
      name: H2_ROW.weftH1,
      counter: null,
      call: async () => (await weftH1.request({ path: "/" })).text(),
      close: () => weftH1.close(),
    },
    nodeTarget(H2_ROW.nodeTls, 1, tlsOrigin, ca),
    nodeTarget(H2_ROW.nodeH2c, 0, h2cOrigin, undefined),
    {
      name: H2_ROW.undiciBig,
      counter: 1,
      concurrency: BIG_CONCURRENCY,
      call: async () => (await pool.request(big)).body.arrayBuffer(),
      close: async () => {},
    },
    {
      name: H2_ROW.weftBig,
      counter: 1,
      concurrency: BIG_CONCURRENCY,
      call: async () => (await weftTls.request(big)).arrayBuffer(),
      close: async () => {},
    },
    {
      name: H2_ROW.weftBigSmallWindows,
      counter: 1,
      concurrency: BIG_CONCURRENCY,
      call: async () => (await weftSmallWindows.request(big)).arrayBuffer(),
      close: () => weftSmallWindows.close(),
    },
  ];
}

function opensslMissing(): string | undefined {
  const found = spawnSync("openssl", ["version"], { stdio: "ignore" }).status === 0;
  return found
    ? undefined
    : `openssl not on PATH (the test certificates are made with it) — install with: ${OPENSSL_INSTALL}`;
}

export async function runHttp2(settings: BenchSettings): Promise<Http2Result> {
  const missing = opensslMissing();
  if (missing !== undefined) return { skipped: missing, rows: [], concurrency: settings.concurrency };
  // Imported only now: certs.ts checks for openssl when it loads (and throws in CI without it).
  const { makePki } = await import("../test/helpers/certs.js");
  const pki = makePki();
  let child: ChildServer | undefined;
  let h1: Awaited<ReturnType<typeof startServer>> | undefined;
  let list: Target[] = [];
  try {
    child = await startChild("./http2-server.ts", [`--pki=${pki.dir}`]);
    h1 = await startServer();
    const [h2c, tls, statsPort] = child.ports as [number, number, number];
    const stats = (): Promise<Http2ServerStats> => getJson<Http2ServerStats>(statsPort, "/__stats");
    list = targets({ h2c, tls, h1: h1.port }, pki.ca);
    const tallies = new Map<string, Tally>(
      list.map((t) => [t.name, { count: 0, errors: 0, elapsedMs: 0, latencies: [], slices: [] }]),
    );
    const sessions = new Map<string, number>(list.map((t) => [t.name, 0]));
    const sliceMs = settings.durationMs / settings.rounds;
    for (let round = 0; round < settings.rounds; round++) {
      for (const t of round % 2 === 0 ? list : [...list].reverse()) {
        const before = t.counter === null ? null : (await stats()).sessions[t.counter];
        const warmMs = round === 0 ? settings.warmupMs : Math.min(100, settings.warmupMs);
        const concurrency = t.concurrency ?? settings.concurrency;
        await drive(t.call, concurrency, warmMs, null);
        await drive(t.call, concurrency, sliceMs, tallies.get(t.name)!);
        if (before !== null && t.counter !== null)
          sessions.set(t.name, sessions.get(t.name)! + (await stats()).sessions[t.counter] - before);
      }
    }
    const rows = list.map((t): Http2Row => {
      const tally = tallies.get(t.name)!;
      return {
        name: t.name,
        ...tallyStats(t.name, tally),
        cpuUsPerCall: (tally.cpuUs ?? Number.NaN) / tally.count,
        sessions: t.counter === null ? Number.NaN : sessions.get(t.name)!,
        slices: tally.slices ?? [],
      };
    });
    return { rows, concurrency: settings.concurrency };
  } finally {
    for (const t of list)
      await t.close().catch((error: unknown) => console.error(`closing ${t.name}: ${String(error)}`));
    await h1?.stop();
    await child?.stop();
    pki.close();
  }
}

/** Row `a` / row `b`, round by round (lib.ts). */
function rowsPerRound(result: Http2Result, a: string, b: string): ReturnType<typeof perRound> {
  const slices = (name: string) => result.rows.find((r) => r.name === name)?.slices ?? [];
  return perRound(slices(a), slices(b));
}

export function printHttp2(result: Http2Result): void {
  if (result.skipped !== undefined) {
    console.log(`(HTTP/2 part skipped: ${result.skipped})`);
    return;
  }
  const base = result.rows.find((r) => r.name === H2_ROW.undici)?.reqPerSec ?? Number.NaN;
  printTable(
    [
      `loopback, concurrency ${result.concurrency}`,
      "req/s",
      "p50 ms",
      "p99 ms",
      "× undici h2",
      "CPU µs/call",
      "sessions",
      "errors",
    ],
    result.rows.map((r) => [
      r.name,
      fmt(r.reqPerSec),
      fmt(r.p50Ms, 2),
      fmt(r.p99Ms, 2),
      ratio(r.reqPerSec, base),
      fmt(r.cpuUsPerCall, 1),
      Number.isNaN(r.sessions) ? "(h1)" : String(r.sessions),
      String(r.errors),
    ]),
  );
  console.log("(CPU µs/call: this process only; sessions: HTTP/2 connections the server accepted for the row)");
  for (const line of http2Summary(result)) console.log(line);
}

/** The target line, then what a call costs against the other rows. */
export function http2Summary(result: Http2Result): string[] {
  if (result.skipped !== undefined) return [`[skip] HTTP/2: ${result.skipped}`];
  const row = (name: string): Http2Row | undefined => result.rows.find((r) => r.name === name);
  const tls = rowsPerRound(result, H2_ROW.weftTls, H2_ROW.undici);
  const pooled = (row(H2_ROW.weftTls)?.reqPerSec ?? Number.NaN) / (row(H2_ROW.undici)?.reqPerSec ?? Number.NaN);
  const h2c = rowsPerRound(result, H2_ROW.weftH2c, H2_ROW.weftH1);
  const floor = rowsPerRound(result, H2_ROW.weftH2c, H2_ROW.nodeH2c);
  const cpu = (name: string): string => fmt(row(name)?.cpuUsPerCall ?? Number.NaN, 1);
  const bulk = rowsPerRound(result, H2_ROW.weftBig, H2_ROW.undiciBig);
  const windows = rowsPerRound(result, H2_ROW.weftBig, H2_ROW.weftBigSmallWindows);
  return [
    `[${tls.median >= H2_TARGET ? "PASS" : "FAIL"}] weft http2Transport over TLS vs undici h2 Pool over TLS, req/s: ${tls.median.toFixed(2)}× (median of rounds, range ${tls.min.toFixed(2)}–${tls.max.toFixed(2)}; pooled ${pooled.toFixed(2)}×); target ≥ ${H2_TARGET.toFixed(2)}×`,
    `[info] weft over h2c vs weft over HTTP/1.1: ${h2c.median.toFixed(2)}× req/s (range ${h2c.min.toFixed(2)}–${h2c.max.toFixed(2)}); weft h2c vs bare node:http2 h2c: ${floor.median.toFixed(2)}×`,
    `[info] 1 MiB answers over TLS: weft h2 ${bulk.median.toFixed(2)}× undici h2 (range ${bulk.min.toFixed(2)}–${bulk.max.toFixed(2)}); weft's 1 MiB / 8 MiB windows ${windows.median.toFixed(2)}× the same client with HTTP/2's 64 KiB ones`,
    `[info] client CPU per call, µs: weft h2 TLS ${cpu(H2_ROW.weftTls)}, undici h2 TLS ${cpu(H2_ROW.undici)}, weft h2c ${cpu(H2_ROW.weftH2c)}, weft HTTP/1.1 ${cpu(H2_ROW.weftH1)}, bare node:http2 TLS ${cpu(H2_ROW.nodeTls)} / h2c ${cpu(H2_ROW.nodeH2c)}`,
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const settings = readSettings();
  console.log(`weft HTTP/2 bench — ${machineLine()}${settings.quick ? " (quick)" : ""}\n`);
  printHttp2(await runHttp2(settings));
}

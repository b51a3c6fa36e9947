/**
 * gRPC unary throughput: weft's `grpcClient` (the default stack — discovery, P2C, breakers,
 * retries with the budget, deadlines — over a grpc-js channel) next to a plain grpc-js client,
 * against the same `@grpc/grpc-js` server in a child process (bench/grpc-server.ts).
 *
 * Each row keeps `concurrency` (32) calls in flight for a fixed time, in interleaved slices with
 * the order rotated every round (bench/throughput.ts's method, which reverses it), so a noisy
 * spell of this shared machine is spread over every row and every place in the order. Each client has its own HTTP/2 connection (a local
 * subchannel pool), so neither rides on the other's. Client CPU per call (user + system time of
 * this process) is less sensitive to neighbours than req/s.
 *
 * Rows: `grpc-js client` (the generated client's callback method, wrapped in a Promise), `weft
 * grpcClient` (the Promise form), `weft grpcClient (callback)` (grpc-js's callback form through
 * weft). Target: weft ≥ 0.9× grpc-js.
 *
 * Run alone: `npx tsx bench/grpc.ts [--quick] [--duration=ms] [--warmup=ms] [--rounds=n] [--concurrency=n]`.
 */
import { pathToFileURL } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { staticDiscovery } from "weft";
import { grpcClient, type GrpcUnaryMethod } from "weft/grpc";
import { loadEcho, type EchoReply, type EchoRequest } from "../test/helpers/grpc.js";
import { startChild } from "./child.js";
import { fmt, machineLine, perRound, printTable, ratio, readSettings, type BenchSettings } from "./lib.js";
import { drive, tallyStats, type Tally } from "./throughput.js";

export interface GrpcRow {
  readonly name: string;
  readonly reqPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  /** CPU time (user + system) of this process per call, µs. */
  readonly cpuUsPerCall: number;
  /** req/s of each slice, in round order. */
  readonly slices: readonly number[];
  /** Client CPU per call of each slice, µs, in round order. */
  readonly cpuSlices: readonly number[];
}

export interface GrpcResult {
  readonly rows: readonly GrpcRow[];
  readonly concurrency: number;
  /** weft grpcClient's req/s over grpc-js's (the target is ≥ 0.9). */
  readonly ratio: number;
  /** The median over rounds of that ratio, slice by slice (each round runs both rows back to back). */
  readonly medianSliceRatio: number;
  /** The median over rounds of weft's client CPU per call over grpc-js's. */
  readonly medianCpuRatio: number;
}

const GRPC_ROW = {
  plain: "grpc-js client",
  weft: "weft grpcClient",
  weftCallback: "weft grpcClient (callback)",
} as const;

interface Setup {
  readonly name: string;
  readonly call: () => Promise<unknown>;
  readonly close: () => Promise<unknown>;
}

/** One connection per client: neither shares the other's HTTP/2 session. */
const CHANNEL_OPTIONS = { "grpc.use_local_subchannel_pool": 1 };

type GetCallback = (error: grpc.ServiceError | null, reply?: EchoReply) => void;

function setUp(port: number): Setup[] {
  const Echo = loadEcho();
  const request: Partial<EchoRequest> = { text: "bench" };
  const plain = new Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  const plainGet = plain.get as (req: Partial<EchoRequest>, callback: GetCallback) => grpc.ClientUnaryCall;
  const options = {
    discovery: staticDiscovery([`http://127.0.0.1:${port}`]),
    grpc: { channelOptions: CHANNEL_OPTIONS },
  };
  const weft = grpcClient<{ get: GrpcUnaryMethod<Partial<EchoRequest>, EchoReply> }>(Echo, {
    service: "bench-grpc",
    ...options,
  });
  const weftCallback = grpcClient<{ get: GrpcUnaryMethod<Partial<EchoRequest>, EchoReply> }>(Echo, {
    service: "bench-grpc-callback",
    ...options,
  });
  const viaCallback = (get: (req: Partial<EchoRequest>, callback: GetCallback) => unknown) => () =>
    new Promise<EchoReply | undefined>((resolve, reject) =>
      get(request, (error, reply) => (error === null ? resolve(reply) : reject(error))),
    );
  return [
    {
      name: GRPC_ROW.plain,
      call: viaCallback((r, cb) => plainGet.call(plain, r, cb)),
      close: async () => plain.close(),
    },
    { name: GRPC_ROW.weft, call: () => weft.get(request), close: () => weft.close() },
    {
      name: GRPC_ROW.weftCallback,
      call: viaCallback((r, cb) => weftCallback.get(r, cb)),
      close: () => weftCallback.close(),
    },
  ];
}

export async function runGrpc(settings: BenchSettings): Promise<GrpcResult> {
  const server = await startChild("./grpc-server.ts");
  const setups = setUp(server.ports[0] as number);
  try {
    const tallies = new Map<string, Tally>(
      setups.map((s) => [s.name, { count: 0, errors: 0, elapsedMs: 0, latencies: [], slices: [] }]),
    );
    const cpuSlices = new Map<string, number[]>(setups.map((s) => [s.name, []]));
    const sliceMs = settings.durationMs / settings.rounds;
    for (let round = 0; round < settings.rounds; round++) {
      // Rotated each round, so every row takes every place in the order as often (with three rows,
      // reversing would leave the middle one in the middle every time).
      const order = setups.map((_, i) => setups[(i + round) % setups.length] as Setup);
      for (const s of order) {
        const warmup = round === 0 ? settings.warmupMs : Math.min(100, settings.warmupMs);
        await drive(s.call, settings.concurrency, warmup, null);
        const tally = tallies.get(s.name) as Tally;
        const [count, cpu] = [tally.count, tally.cpuUs ?? 0];
        await drive(s.call, settings.concurrency, sliceMs, tally);
        cpuSlices.get(s.name)?.push(((tally.cpuUs ?? 0) - cpu) / (tally.count - count));
      }
    }
    const rows: GrpcRow[] = setups.map((s) => {
      const t = tallies.get(s.name) as Tally;
      return {
        name: s.name,
        ...tallyStats(s.name, t),
        cpuUsPerCall: (t.cpuUs ?? NaN) / t.count,
        slices: t.slices ?? [],
        cpuSlices: cpuSlices.get(s.name) ?? [],
      };
    });
    const row = (name: string): GrpcRow | undefined => rows.find((r) => r.name === name);
    const [plain, weft] = [row(GRPC_ROW.plain), row(GRPC_ROW.weft)];
    const perSlice = (pick: (r: GrpcRow) => readonly number[]): number =>
      plain === undefined || weft === undefined ? NaN : perRound(pick(weft), pick(plain)).median;
    return {
      rows,
      concurrency: settings.concurrency,
      ratio: (weft?.reqPerSec ?? NaN) / (plain?.reqPerSec ?? NaN),
      medianSliceRatio: perSlice((r) => r.slices),
      medianCpuRatio: perSlice((r) => r.cpuSlices),
    };
  } finally {
    for (const s of setups)
      await s.close().catch((error: unknown) => console.error(`closing ${s.name}: ${String(error)}`));
    await server.stop();
  }
}

export function printGrpc(result: GrpcResult): void {
  const base = result.rows.find((r) => r.name === GRPC_ROW.plain);
  printTable(
    [
      `gRPC unary, loopback, concurrency ${result.concurrency}`,
      "req/s",
      "p50 ms",
      "p99 ms",
      "× grpc-js",
      "CPU µs/call",
      "errors",
    ],
    result.rows.map((r) => [
      r.name,
      fmt(r.reqPerSec),
      fmt(r.p50Ms, 2),
      fmt(r.p99Ms, 2),
      ratio(r.reqPerSec, base?.reqPerSec ?? NaN),
      fmt(r.cpuUsPerCall, 1),
      String(r.errors),
    ]),
  );
  // The spread of the ratio over the interleaved slices: how much of the gap is the machine's noise.
  const weft = result.rows.find((r) => r.name === GRPC_ROW.weft);
  if (base !== undefined && weft !== undefined) {
    const { ratios } = perRound(weft.slices, base.slices);
    console.log(
      `(weft / grpc-js req/s per round: ${ratios.map((x) => x.toFixed(2)).join(" ")}; median ${result.medianSliceRatio.toFixed(2)}, pooled ${result.ratio.toFixed(2)}; target ≥ 0.90)`,
    );
    console.log(`(weft / grpc-js client CPU per call, median per round: ${result.medianCpuRatio.toFixed(2)})`);
  }
  console.log("(CPU µs/call: user + system time of the client process only; the server is not counted)");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const settings = readSettings();
  console.log(`weft gRPC bench — ${machineLine()}${settings.quick ? " (quick)" : ""}\n`);
  printGrpc(await runGrpc(settings));
}

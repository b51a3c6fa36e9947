/**
 * A CPU profile of one call path, summarised by where in weft the time goes — the tool for the
 * "measure before and after every change to the stack" loop of DESIGN.md. The profiler (node's
 * inspector, in process) runs only while the calls run, so start-up and TS compilation stay out.
 *
 * Paths (`--row=`):
 * - `weft.request` (default), `weft.fetch`, `pool` (undici Pool.request, the floor): loopback
 *   against bench/server.ts in a child process, concurrency 32, as in throughput.ts;
 * - `memory`: weft.request over mockService, awaited one after another, as in overhead.ts.
 *
 * Prints self time by area (weft src files, undici, node internals, GC), the top functions by
 * self time, and inclusive time per weft src file (a sample counts once for each src file on its
 * stack). Writes the raw profile to .bench-tmp/ (open it in Chrome DevTools → Performance).
 *
 * Run: `npx tsx bench/profile.ts --row=weft.request --seconds=5`.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { Pool } from "undici";
import { createClient, staticDiscovery } from "weft";
import { fmt, printTable } from "./lib.js";
import { memoryClient } from "./overhead.js";
import { drive, startServer, type Tally } from "./throughput.js";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const args = new Map(
  process.argv.slice(2).map((a) => (/^--([a-z]+)=(.*)$/.exec(a) ?? [a, a, "true"]).slice(1) as [string, string]),
);
const row = args.get("row") ?? "weft.request";
const seconds = Number(args.get("seconds") ?? 5);
const ROWS = ["weft.request", "weft.fetch", "pool", "memory"];
if (!ROWS.includes(row)) throw new Error(`profile: --row must be one of ${ROWS.join(", ")}`);

function area(url: string): string {
  const src = /\/src\/(.+?)(\?.*)?$/.exec(url);
  if (src !== null && !url.includes("node_modules")) return `weft src/${src[1]}`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg !== null) return pkg[1] as string;
  if (url.startsWith("node:")) return "node internals";
  if (url.includes("/bench/")) return "bench harness";
  return url === "" ? "(native/vm)" : url;
}

function summarise(profile: Profile, calls: number): void {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    const name = byId.get(id)?.callFrame.functionName;
    if (name === "(idle)") return;
    total += dt;
    self.set(id, (self.get(id) ?? 0) + dt);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const a = area(byId.get(at)!.callFrame.url);
      if (a.startsWith("weft src/") && !seen.has(a)) {
        seen.add(a);
        inclusive.set(a, (inclusive.get(a) ?? 0) + dt);
      }
    }
  });
  const pct = (us: number): string => `${((100 * us) / total).toFixed(1)}%`;
  const selfByArea = new Map<string, number>();
  const selfByFn = new Map<string, number>();
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    const a = f.functionName.startsWith("(") ? f.functionName : area(f.url);
    selfByArea.set(a, (selfByArea.get(a) ?? 0) + us);
    const key = `${f.functionName || "(anonymous)"}  [${a}:${f.lineNumber + 1}]`;
    selfByFn.set(key, (selfByFn.get(key) ?? 0) + us);
  }
  const top = (m: Map<string, number>, n: number): string[][] =>
    [...m]
      .sort((x, y) => y[1] - x[1])
      .slice(0, n)
      .map(([k, us]) => [k, fmt(us / 1000), pct(us)]);
  console.log(
    `busy CPU time sampled: ${fmt(total / 1000)} ms for ${fmt(calls)} calls = ${fmt(total / calls, 2)} µs of this process's CPU per call\n`,
  );
  printTable(["self time by area", "ms", "share"], top(selfByArea, 12));
  console.log();
  printTable(["top functions by self time", "ms", "share"], top(selfByFn, 25));
  console.log();
  printTable(["inclusive time per weft src file", "ms", "share"], top(inclusive, 20));
}

async function profiled(work: () => Promise<void>): Promise<Profile> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 100 });
  await session.post("Profiler.start");
  await work();
  const { profile } = (await session.post("Profiler.stop")) as unknown as { profile: Profile };
  session.disconnect();
  return profile;
}

const ms = seconds * 1000;
let profile: Profile;
let calls = 0;
if (row === "memory") {
  const client = memoryClient("profile-memory");
  const call = (): Promise<unknown> => client.request({ path: "/x" });
  for (let i = 0; i < 50_000; i++) await call();
  profile = await profiled(async () => {
    const end = performance.now() + ms;
    while (performance.now() < end) {
      for (let i = 0; i < 1000; i++) await call();
      calls += 1000;
    }
  });
  await client.close();
} else {
  const server = await startServer();
  const origin = `http://127.0.0.1:${server.port}`;
  const client = createClient({ service: "profile", discovery: staticDiscovery([origin]) });
  const pool = new Pool(origin, { connections: 64 });
  const call =
    row === "pool"
      ? async () => (await pool.request({ path: "/", method: "GET" })).body.text()
      : row === "weft.fetch"
        ? async () => (await client.fetch("/")).text()
        : async () => (await client.request({ path: "/" })).text();
  try {
    await drive(call, 32, 1000, null);
    const tally: Tally = { count: 0, errors: 0, elapsedMs: 0, latencies: [] };
    profile = await profiled(() => drive(call, 32, ms, tally));
    calls = tally.count;
    if (tally.errors > 0) console.error(`${tally.errors} calls failed; first: ${String(tally.firstError)}`);
  } finally {
    await client.close();
    await pool.close();
    await server.stop();
  }
}
mkdirSync(".bench-tmp", { recursive: true });
const file = `.bench-tmp/${row}-${Date.now()}.cpuprofile`;
writeFileSync(file, JSON.stringify(profile));
console.log(`CPU profile of ${row}, ${seconds} s — raw profile: ${file}\n`);
summarise(profile, calls);

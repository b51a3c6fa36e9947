/**
 * canary: a canary rollout driven by the `weft config` CLI while traffic flows —
 * `npx tsx examples/canary/main.ts`.
 *
 * Starts a throwaway etcd and three catalog instances (child processes) that register
 * themselves with their version in the discovery metadata: two of v1, one of v2. A caller in
 * this process finds them with `etcdDiscovery` and follows its config document with
 * `etcdConfig`, sending ~200 calls/s (GETs, and a POST every fifth call). Then it rolls v2 out
 * the way an operator would, through the CLI, each step a separate process:
 *
 *   node --import tsx src/cli/weft.ts config put --etcd … --message "v2 at 10 %" catalog examples/canary/steps/v2-10.yaml
 *
 * for v2 at 0 %, 10 %, 50 % and 100 % (steps/*.yaml: one route, a weighted split over the
 * `version` subsets). After each put it waits until the caller reports the revision the CLI
 * printed as applied (`client.snapshot().routing.version`), and holds the step ~2 s; during the
 * last hold it runs `weft config history catalog`.
 *
 * Each call counts under the version applied when it was sent (load.ts), and each instance
 * answers with its version, so a step's row is the share of its calls that v2 answered — 0 and
 * 100 % exactly, 10 and 50 % within the randomness of a weighted pick. The goal is 0 failed
 * calls. Every child is stopped by its pid and etcd's data dir removed on every exit path.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createMesh, etcdConfig, etcdDiscovery, type Client } from "weft";
import { ETCD_INSTALL, etcdVersion, startEtcd, type LocalEtcd } from "../etcd-mesh/etcd.js";
import { Instances, wallMs } from "../etcd-mesh/instances.js";
import { Load, type Count } from "./load.js";

const SERVICES = "/services/catalog/";
const CONFIG = "/weft/config/";
const WEIGHTS = [0, 10, 50, 100];
const HOLD_MS = 2_000;
const RATE_PER_SECOND = 200;
const MAX_IN_FLIGHT = 64;

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));
const CLI = here("../../src/cli/weft.ts");
const INSTANCE = here("./instance.ts");
const TSX_LOADER = import.meta.resolve("tsx");

if (etcdVersion() === undefined) {
  console.error(`canary needs etcd: ${ETCD_INSTALL} (or set ETCD_BIN=/path/to/etcd)`);
  process.exit(1);
}

const instances = new Instances(INSTANCE);
const puts = new Set<ChildProcess>();
let etcd: LocalEtcd | undefined;
let closeMesh: (() => Promise<void>) | undefined;
let cleaning: Promise<void> | undefined;
/** Stops everything this run started, in order: the caller, the instances (they deregister), etcd. */
const cleanup = (): Promise<void> =>
  (cleaning ??= (async () => {
    for (const child of puts) child.kill("SIGKILL");
    await closeMesh?.().catch(() => {});
    await instances.stopAll();
    await etcd?.close();
  })());
process.once("exit", () => {
  for (const child of puts) child.kill("SIGKILL");
  instances.killNow();
  etcd?.killNow();
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    console.log(`\n${signal}: stopping the instances and etcd`);
    void cleanup().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  });
}

const t0 = wallMs();
const at = (): string => `${((wallMs() - t0) / 1000).toFixed(2).padStart(5)} s`;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

interface Step {
  readonly weight: number;
  readonly version: string;
  /** Wall-clock ms: the CLI's meta `at` (just before its transaction), and the caller applying it. */
  readonly writtenAtMs: number;
  readonly appliedAtMs: number;
  /** How long the `weft config put` process ran, ms (node + tsx start included). */
  readonly putMs: number;
}

async function main(): Promise<void> {
  console.log("weft canary — v2 rolled out to 0, 10, 50, 100 % with `weft config put` while traffic flows\n");
  etcd = await startEtcd();
  console.log(`${at()}  etcd ${etcd.version} on ${etcd.url} (pid ${etcd.pid}, data dir ${etcd.dataDir})`);
  const started = await Promise.all(
    [
      ["v1-a", "v1"],
      ["v1-b", "v1"],
      ["v2-a", "v2"],
    ].map(([name, version]) => instances.start(name as string, etcd!.url, SERVICES, version as string)),
  );
  for (const i of started) console.log(`${at()}  ${i.name} on ${i.url} (pid ${i.pid}), registered under ${SERVICES}`);

  const mesh = createMesh({ onWarning: (message) => console.log(`${at()}  warning: ${message}`) });
  closeMesh = () => mesh.close();
  const catalog = mesh.client("catalog", {
    discovery: etcdDiscovery({ hosts: [etcd.url], prefix: SERVICES }),
    configSource: etcdConfig({ hosts: [etcd.url], prefix: CONFIG }),
  });
  await waitFor(() => catalog.snapshot().endpoints.length === 3, 5_000, "the caller to discover the three instances");

  const load = new Load(catalog, { ratePerSecond: RATE_PER_SECOND, maxInFlight: MAX_IN_FLIGHT });
  const applied = new Map<string, number>();
  catalog.events.onConfig((e) => {
    if (e.kind === "applied" && e.version !== undefined) {
      // From the next call on, calls are routed by this version: count them under it.
      load.label = e.version;
      applied.set(e.version, wallMs());
    }
    if (e.kind === "rejected") console.log(`${at()}  caller rejected ${e.version}: ${e.error}`);
  });
  console.log(
    `${at()}  caller: etcdDiscovery + etcdConfig({ prefix: "${CONFIG}" }), ${RATE_PER_SECOND} calls/s (1 in 5 a POST), no config yet\n`,
  );
  load.start();

  const steps: Step[] = [];
  for (const weight of WEIGHTS) {
    const file = here(`./steps/v2-${weight}.yaml`);
    const args = ["config", "put", "--etcd", etcd.url, "--by", "canary-example", "--message", `v2 at ${weight} %`];
    const shown = args.map((a) => (a === etcd!.url ? "$ETCD" : a.includes(" ") ? `"${a}"` : a)).join(" ");
    console.log(`${at()}  $ weft ${shown} catalog examples/canary/steps/v2-${weight}.yaml`);
    const put = await weft([...args, "catalog", file]);
    const revision = /revision (\d+) written/.exec(put.stdout)?.[1];
    if (put.code !== 0 || revision === undefined)
      throw new Error(`weft config put failed (exit ${put.code}):\n${put.stdout}${put.stderr}`);
    console.log(`${at()}    ${put.stdout.trim()}`);
    const version = `rev ${revision}`;
    await waitFor(() => catalog.snapshot().routing?.version === version, 5_000, `the caller to apply ${version}`);
    const writtenAtMs = await writtenAt(etcd.url);
    const appliedAtMs = applied.get(version) as number;
    steps.push({ weight, version, writtenAtMs, appliedAtMs, putMs: put.ms });
    console.log(
      `${at()}    caller applied ${version} ${ms(appliedAtMs - writtenAtMs)} after the write; holding ${HOLD_MS / 1000} s`,
    );
    // While the last step holds, ask for the history (what an operator checks after a rollout).
    const history = weight === WEIGHTS.at(-1) ? weft(["config", "history", "--etcd", etcd.url, "catalog"]) : undefined;
    await sleep(HOLD_MS);
    if (history !== undefined) {
      const { stdout, stderr } = await history;
      console.log(`${at()}  $ weft config history --etcd $ETCD catalog\n${(stdout + stderr).trimEnd()}`);
    }
  }
  await load.stop();
  report(steps, load, catalog);
}

/** Runs `weft <args>` as its own process (the bin, through tsx), as an operator's shell would. */
function weft(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const startedAt = wallMs();
  const child = spawn(process.execPath, ["--import", TSX_LOADER, CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  puts.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const guard = setTimeout(() => child.kill("SIGKILL"), 15_000);
  return new Promise((resolve) =>
    child.on("close", (code) => {
      clearTimeout(guard);
      puts.delete(child);
      resolve({ code, stdout, stderr, ms: wallMs() - startedAt });
    }),
  );
}

/** When the CLI wrote the current version: its meta's `at`, read straight from etcd's JSON gateway. */
async function writtenAt(etcdUrl: string): Promise<number> {
  const key = Buffer.from(`${CONFIG}.meta/catalog`).toString("base64");
  const res = await fetch(`${etcdUrl}/v3/kv/range`, { method: "POST", body: JSON.stringify({ key }) });
  const { kvs } = (await res.json()) as { kvs?: { value: string }[] };
  const meta = JSON.parse(Buffer.from(kvs?.[0]?.value ?? "", "base64").toString()) as { at: string };
  return Date.parse(meta.at);
}

function report(steps: readonly Step[], load: Load, catalog: Client): void {
  const rows: string[][] = [
    ["step", "v2 weight", "version", "write → applied", "put (process)", "calls", "v1", "v2", "v2 share", "failed"],
  ];
  const row = (step: string, weight: string, version: string, count: Count | undefined, s?: Step): void => {
    const calls = count?.calls ?? 0;
    const v2 = count?.answeredBy.get("v2") ?? 0;
    rows.push([
      step,
      weight,
      version,
      s === undefined ? "" : ms(s.appliedAtMs - s.writtenAtMs),
      s === undefined ? "" : ms(s.putMs),
      String(calls),
      String(count?.answeredBy.get("v1") ?? 0),
      String(v2),
      calls === 0 ? "-" : `${((v2 / calls) * 100).toFixed(1)} %`,
      String(count?.failed ?? 0),
    ]);
  };
  row("-", "(no config)", "code", load.counts.get("before"));
  steps.forEach((s, i) => row(String(i), `${s.weight} %`, s.version, load.counts.get(s.version), s));
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  console.log("");
  for (const r of rows)
    console.log(`  ${r.map((cell, c) => (c < 3 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ")}`);

  const counts = [...load.counts.values()];
  const calls = counts.reduce((sum, c) => sum + c.calls, 0);
  const failed = counts.reduce((sum, c) => sum + c.failed, 0);
  const posts = counts.reduce((sum, c) => sum + c.posts, 0);
  const reasons = [...load.failures].map(([reason, n]) => `${reason} ×${n}`).join(", ");
  const routing = catalog.snapshot().routing;
  console.log(
    `\nsummary: ${calls} calls (${posts} POSTs) — ${calls - failed} ok, ${failed} failed${reasons ? ` (${reasons})` : ""}; ` +
      `${load.total.skipped} not sent (in-flight bound); the caller serves ${routing?.version}, ${routing?.config?.rejected ?? 0} versions rejected`,
  );
  if (failed > 0) process.exitCode = 1;
}

function ms(value: number): string {
  return `${Math.round(value).toLocaleString("en-US")} ms`;
}

async function waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = wallMs() + timeoutMs;
  while (!predicate()) {
    if (wallMs() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(2);
  }
}

try {
  await main();
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
} finally {
  await cleanup();
  console.log(
    `\nstopped: instances (pids ${instances.pids.join(", ")}) and etcd (pid ${etcd?.pid ?? "-"}); data dir removed`,
  );
}

/**
 * Pick cost: what choosing an endpoint costs each balancer, in memory, at 10, 1,000 and 10,000
 * endpoints — the part of a call's overhead that grows with the size of the service — and what
 * the structure-building balancers (ring hash, Maglev, weighted round-robin and random) pay
 * to rebuild when the endpoint list changes.
 *
 * Setup, as a client builds it (`client/client.ts`): each balancer's picker from
 * `balancer.create({ clock, random, load, weightOf })` with the system clock, `Math.random`, a
 * `LoadTracker` with the default options and the default slow-start weigher; a ready array of
 * `new Endpoint({ url }, 0)` past their slow-start ramp (`readySince = NOT_RAMPING`, as endpoints
 * that join a new client together are), each with a peak-EWMA estimate (1–5 ms) and 0–3 requests
 * in flight so that `p2cEwma` and `leastRequest` read real numbers. `roundRobin` and `random`
 * also run with unequal weights (1, 2, 3 in turn: the EDF schedule and the cumulative-weights
 * search); `ringHash` and `maglev` hash `req.path` over 4,096 distinct paths. The pick only: the
 * balance layer's accounting around it (in-flight, EWMA update) is in the overhead bench.
 *
 * Method: every row is warmed up (the first pick builds its structure), calibrated to ~50 ms per
 * round (20 ms with --quick), then rows are measured round-robin, `pickRounds` rounds (7; 3 with
 * --quick), and the median ns per pick is kept.
 *
 * Rebuild: the first pick on a new `ready` array builds the picker's structure (the balance
 * layer hands pickers the same array until `EndpointSet.refresh` makes a new one, so the build
 * happens on the first call after a change, inside that call). `cold` = a new picker's first
 * pick (ring hash also hashes every point); `one leaves` = the first pick after one endpoint
 * left (a different one each time), median of `pickRounds` + 2 changes.
 *
 * Run alone: `npx tsx bench/pick.ts [--quick] [--pick-rounds=n]`.
 */
import { pathToFileURL } from "node:url";
import {
  leastRequest,
  maglev,
  p2cEwma,
  random,
  ringHash,
  roundRobin,
  systemClock,
  type Balancer,
  type MeshRequest,
  type Picker,
} from "weft";
import { LoadTracker } from "../src/balance/load.js";
import { Endpoint } from "../src/core/endpoint.js";
import { NOT_RAMPING, SLOW_START_DEFAULTS, slowStartWeigher } from "../src/health/slow-start.js";
import { fmt, machineLine, median, printTable, readSettings, type BenchSettings } from "./lib.js";

export const PICK_SIZES = [10, 1_000, 10_000] as const;

interface BalancerSpec {
  readonly name: string;
  readonly balancer: () => Balancer;
  /** Unequal weights (1, 2, 3 in turn). */
  readonly weighted?: boolean;
  /** Has a structure built per ready array (rebuild measured). */
  readonly builds?: boolean;
}

const byPath = (req: MeshRequest): string => req.path;
const SPECS: readonly BalancerSpec[] = [
  { name: "p2cEwma()", balancer: () => p2cEwma() },
  { name: "leastRequest()", balancer: () => leastRequest() },
  { name: "roundRobin()", balancer: () => roundRobin() },
  { name: "roundRobin(), weights 1–3", balancer: () => roundRobin(), weighted: true, builds: true },
  { name: "random()", balancer: () => random() },
  { name: "random(), weights 1–3", balancer: () => random(), weighted: true, builds: true },
  { name: "ringHash({ key })", balancer: () => ringHash({ key: byPath }), builds: true },
  { name: "maglev({ key })", balancer: () => maglev({ key: byPath }), builds: true },
  {
    name: "maglev({ key, tableSize: 1,000,003 })",
    balancer: () => maglev({ key: byPath, tableSize: 1_000_003 }),
    builds: true,
  },
];

export interface PickRow {
  readonly name: string;
  /** ns per pick, by size (PICK_SIZES order). */
  readonly ns: readonly number[];
  /** ms for a new picker's first pick, and for the first pick after one endpoint left (builders only). */
  readonly coldMs?: readonly number[];
  readonly rebuildMs?: readonly number[];
}

export interface PickResult {
  readonly rows: readonly PickRow[];
}

const REQUESTS: readonly MeshRequest[] = Array.from(
  { length: 4096 },
  (_, i) => ({ attempt: 0, path: `/users/${i}`, headers: {} }) as unknown as MeshRequest,
);

/** N endpoints on distinct addresses, past slow start, with load the cost-based pickers read. */
function makeEndpoints(n: number, weighted: boolean): Endpoint[] {
  const now = systemClock.now();
  return Array.from({ length: n }, (_, i) => {
    const e = new Endpoint(
      { url: `http://10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:8080`, weight: weighted ? 1 + (i % 3) : 1 },
      0,
    );
    e.readySince = NOT_RAMPING;
    e.ewmaMs = 1 + ((i * 7919) % 400) / 100;
    e.ewmaStamp = now;
    e.inflight = i % 4;
    e.pendingStartSum = e.inflight * (now - 2);
    return e;
  });
}

function makePicker(spec: BalancerSpec, load: LoadTracker): Picker {
  return spec
    .balancer()
    .create({ clock: systemClock, random: Math.random, load, weightOf: slowStartWeigher(SLOW_START_DEFAULTS) });
}

/** A load tracker whose client-wide latency is known (p2c reads it for every candidate). */
function makeLoad(): LoadTracker {
  const load = new LoadTracker();
  const probe = new Endpoint({ url: "http://10.255.255.255:1" }, 0);
  for (let i = 0; i < 200; i++) load.observe(probe, 1 + (i % 5), false, systemClock.now());
  return load;
}

let sink = 0;

function timePicks(picker: Picker, ready: readonly Endpoint[], n: number): number {
  const start = process.hrtime.bigint();
  let s = 0;
  for (let i = 0; i < n; i++) s += picker.pick(ready, REQUESTS[i & 4095] as MeshRequest).port;
  const ns = Number(process.hrtime.bigint() - start) / n;
  sink += s;
  return ns;
}

function timeOnce(f: () => void): number {
  const start = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export async function runPick(settings: BenchSettings): Promise<PickResult> {
  const roundMs = settings.quick ? 20 : 50;
  const load = makeLoad();
  interface Cell {
    spec: BalancerSpec;
    picker: Picker;
    ready: Endpoint[];
    count: number;
    samples: number[];
  }
  const cells: Cell[] = [];
  const endpointsBySize = new Map<string, Endpoint[]>();
  for (const spec of SPECS) {
    for (const size of PICK_SIZES) {
      const key = `${size}:${spec.weighted === true}`;
      let ready = endpointsBySize.get(key);
      if (ready === undefined) {
        ready = makeEndpoints(size, spec.weighted === true);
        endpointsBySize.set(key, ready);
      }
      const picker = makePicker(spec, load);
      // Warm-up (the first pick builds), then calibrate to ~roundMs per round.
      let done = 0;
      const start = performance.now();
      while (performance.now() - start < roundMs) {
        timePicks(picker, ready, 1000);
        done += 1000;
      }
      const ns = ((performance.now() - start) * 1e6) / done;
      cells.push({ spec, picker, ready, count: Math.max(1000, Math.round((roundMs * 1e6) / ns)), samples: [] });
    }
  }
  for (let round = 0; round < settings.pickRounds; round++) {
    const order = round % 2 === 0 ? cells : [...cells].reverse();
    for (const cell of order) cell.samples.push(timePicks(cell.picker, cell.ready, cell.count));
  }

  const rows: PickRow[] = [];
  for (const spec of SPECS) {
    const ns = PICK_SIZES.map((size) => median(cells.find((c) => c.spec === spec && c.ready.length === size)!.samples));
    if (spec.builds !== true) {
      rows.push({ name: spec.name, ns });
      continue;
    }
    const coldMs: number[] = [];
    const rebuildMs: number[] = [];
    for (const size of PICK_SIZES) {
      const ready = endpointsBySize.get(`${size}:${spec.weighted === true}`)!;
      const req = REQUESTS[0] as MeshRequest;
      const colds: number[] = [];
      const rebuilds: number[] = [];
      for (let rep = 0; rep < settings.pickRounds + 2; rep++) {
        const picker = makePicker(spec, load);
        const fresh = [...ready];
        colds.push(timeOnce(() => picker.pick(fresh, req)));
        // One endpoint leaves (a different one each time): a new ready array, so the next pick builds.
        const gone = (rep * 7) % size;
        const without = ready.filter((_, i) => i !== gone);
        rebuilds.push(timeOnce(() => picker.pick(without, req)));
      }
      coldMs.push(median(colds));
      rebuildMs.push(median(rebuilds));
    }
    rows.push({ name: spec.name, ns, coldMs, rebuildMs });
  }
  if (sink === 0.5) console.log(sink); // keep the picks observable
  return { rows };
}

export function printPick(result: PickResult): void {
  printTable(
    ["µs per pick (median of rounds)", ...PICK_SIZES.map((n) => `${fmt(n)} endpoints`)],
    result.rows.map((r) => [r.name, ...r.ns.map((ns) => fmt(ns / 1000, 3))]),
  );
  console.log();
  const builders = result.rows.filter((r) => r.rebuildMs !== undefined);
  printTable(
    [
      "build on a new ready array, ms",
      ...PICK_SIZES.map((n) => `cold, ${fmt(n)}`),
      ...PICK_SIZES.map((n) => `one leaves, ${fmt(n)}`),
    ],
    builders.map((r) => [
      r.name,
      ...(r.coldMs ?? []).map((ms) => fmt(ms, 3)),
      ...(r.rebuildMs ?? []).map((ms) => fmt(ms, 3)),
    ]),
  );
  console.log(
    "(cold = a new picker's first pick; one leaves = the first pick after one endpoint left the ready array — the build runs inside that call, on the event loop. " +
      "p2cEwma, leastRequest and equal-weight roundRobin/random build nothing.)",
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const settings = readSettings();
  console.log(`weft pick-cost bench — ${machineLine()}${settings.quick ? " (quick)" : ""}\n`);
  printPick(await runPick(settings));
}

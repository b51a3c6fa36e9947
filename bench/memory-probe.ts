/**
 * One measurement of `memory.ts`, in a process of its own so that each starts from a clean heap:
 * run as `node --expose-gc --import tsx bench/memory-probe.ts --what=<kind> --endpoints=<n>`.
 * It builds `n` of the thing named, keeps them alive, and prints one JSON line: the heapUsed and
 * external (ArrayBuffer) growth after full collections, and how many endpoints were exercised.
 *
 * Kinds:
 * - `client-defaults` — `createClient` with weft's default options (breakers, outlier detection,
 *   slow start on) over `staticDiscovery` of n URLs on 127.0.0.1 (distinct ports, no server:
 *   `mockService` is the transport), `roundRobin()`, then one request through every endpoint so
 *   each has its breaker and load state. The target figure.
 * - `client-no-breaker` — the same with `breaker: false`.
 * - `client-no-breaker-no-outlier` — the same with `breaker: false, outlier: false`.
 * - `client-idle` — the defaults, endpoints resolved but no request sent (no breaker yet).
 * - `endpoint` — n `new Endpoint({ url }, 0)` in an array: the per-endpoint record alone.
 * - `opossum` — n opossum breakers built with the options weft's breaker layer passes (one shared
 *   rotation controller per 256, as `rotation.ts` does, and the two listeners it adds).
 * - `opossum-status` — n of opossum's `Status` (its rolling window: 10 bucket objects) alone, with
 *   the same options: the share of `opossum` that is the window.
 * - `small-clients`, `small-clients-no-breaker` — 50 clients of 3 endpoints each (defaults, and
 *   `breaker: false`), one request each: a client's fixed cost (`heapBytes` is for all 50).
 * - `undici-pool` — n `new Pool(origin, { connections: 64 })`, never connected: what the default
 *   transport adds per endpoint origin (not part of the target, which uses `mockService`).
 */
import { EventEmitter } from "node:events";
import { createRequire } from "node:module";
import CircuitBreaker from "opossum";
import { Pool } from "undici";
import { createClient, roundRobin, staticDiscovery, type Client, type ClientOptions } from "weft";
import { mockService } from "weft/testing";
import { Endpoint } from "../src/core/endpoint.js";

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=") as [string, string]));
const what = args.get("what") ?? "client-defaults";
const n = Number(args.get("endpoints") ?? 10_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("memory-probe: run with node --expose-gc");

function collect(): { heap: number; external: number } {
  for (let i = 0; i < 4; i++) gc!();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, external: m.arrayBuffers };
}

// The URLs are the caller's, made before the first reading: not charged to weft.
const urls = Array.from({ length: n }, (_, i) => `http://127.0.0.1:${10_000 + i}`);
const keep: unknown[] = [];
let exercised = 0;

// Load the modules' code and warm the paths once, so the readings hold only the n things.
{
  const warm = createClient({
    service: "warm",
    discovery: staticDiscovery(urls.slice(0, 2)),
    transport: mockService(() => ({ status: 200, body: "ok" })),
  });
  await (await warm.request({ path: "/" })).text();
  await warm.close();
  new CircuitBreaker(async () => {}, { timeout: false, enableSnapshots: false }).shutdown();
  await new Pool("http://127.0.0.1:1").close();
}

const before = collect();

async function client(extra: Partial<ClientOptions>, send: boolean): Promise<Client> {
  const c = createClient({
    service: "memory",
    discovery: staticDiscovery(urls),
    balancer: roundRobin(),
    transport: mockService(() => ({ status: 200, body: "ok" })),
    ...extra,
  });
  if (send) {
    // Round-robin: n sequential requests visit every endpoint once.
    for (let i = 0; i < n; i++) await (await c.request({ path: "/" })).text();
    exercised = c.snapshot().endpoints.filter((e) => e.requests > 0).length;
  } else {
    exercised = 0;
    await (await c.request({ path: "/" })).text();
  }
  return c;
}

switch (what) {
  case "client-defaults":
    keep.push(await client({}, true));
    break;
  case "client-no-breaker":
    keep.push(await client({ breaker: false }, true));
    break;
  case "client-no-breaker-no-outlier":
    keep.push(await client({ breaker: false, outlier: false }, true));
    break;
  case "client-idle":
    keep.push(await client({}, false));
    break;
  case "endpoint":
    for (const url of urls) keep.push(new Endpoint({ url }, 0));
    break;
  case "opossum": {
    // As health/breaker.ts builds them: weft's options, a shared rotation controller per 256.
    let controller = new EventEmitter();
    controller.setMaxListeners(0);
    for (let i = 0; i < n; i++) {
      if (i % 256 === 0) {
        controller = new EventEmitter();
        controller.setMaxListeners(0);
      }
      const breaker = new CircuitBreaker(async (failed: boolean) => void failed, {
        timeout: false,
        resetTimeout: 2_147_483_647,
        errorThresholdPercentage: 50,
        volumeThreshold: 10,
        rollingCountTimeout: 10_000,
        rollingCountBuckets: 10,
        rollingPercentilesEnabled: false,
        enableSnapshots: false,
        rotateBucketController: controller,
        name: urls[i],
        group: "memory",
      });
      breaker.on("open", () => {});
      breaker.on("close", () => {});
      keep.push(breaker);
    }
    break;
  }
  case "opossum-status": {
    // opossum's rolling window alone (lib/status.js has no types: loaded untyped).
    const Status = createRequire(import.meta.url)("opossum/lib/status.js") as new (options: object) => object;
    let controller = new EventEmitter();
    for (let i = 0; i < n; i++) {
      if (i % 256 === 0) {
        controller = new EventEmitter();
        controller.setMaxListeners(0);
      }
      keep.push(
        new Status({
          rollingCountTimeout: 10_000,
          rollingCountBuckets: 10,
          rollingPercentilesEnabled: false,
          enableSnapshots: false,
          rotateBucketController: controller,
        }),
      );
    }
    break;
  }
  case "small-clients":
  case "small-clients-no-breaker":
    for (let i = 0; i < 50; i++) {
      const c = createClient({
        service: `small-${i}`,
        discovery: staticDiscovery(urls.slice(0, 3)),
        transport: mockService(() => ({ status: 200, body: "ok" })),
        ...(what === "small-clients" ? {} : { breaker: false }),
      });
      await (await c.request({ path: "/" })).text();
      keep.push(c);
    }
    break;
  case "undici-pool":
    for (const url of urls) keep.push(new Pool(url, { connections: 64 }));
    break;
  default:
    throw new Error(`memory-probe: unknown --what=${what}`);
}

const after = collect();
process.stdout.write(
  `${JSON.stringify({ what, endpoints: n, exercised, heapBytes: after.heap - before.heap, externalBytes: after.external - before.external })}\n`,
);
// Keep everything alive up to the reading, then leave without waiting for timers.
if (keep.length < 0) console.log(keep);
process.exit(0);

/**
 * etcd-mesh: service discovery with etcd while traffic flows — `npx tsx examples/etcd-mesh/main.ts`.
 *
 * Starts a throwaway etcd and three `catalog` instances (child processes) that register
 * themselves with `etcdRegistration` under a 2 s lease; a caller in this process finds them with
 * `etcdDiscovery` (list, then watch) and sends ~200 calls/s for 8 s. Meanwhile:
 *
 *   2.0 s  instance-2 gets SIGTERM: it revokes its lease first, so the caller drops it at once,
 *          and calls already sent there finish (graceful: it drains before closing);
 *   3.5 s  instance-3 gets SIGKILL: a crash, nobody deregisters it. Its key stays until the lease
 *          expires (≤ 2 s); meanwhile calls there are refused, retried on another instance, and
 *          outlier detection ejects it after 5 consecutive failures;
 *   5.0 s  instance-2 starts again (a new port): it registers and, after a short ramp (slow
 *          start, shortened to 2 s here), takes its share.
 *
 * One line per second (calls ok / failed, retries, who answered, the caller's endpoint count,
 * whether discovery is stale), a line per change the caller saw, and a summary: the goal is 0
 * failed calls, and the time from each change to the caller's set changing (from
 * `client.events.onEndpointsChanged`). Every child is stopped by its pid and etcd's data dir
 * removed on every exit path: the normal end, an error, SIGINT/SIGTERM.
 */
import { createMesh, etcdDiscovery, type Client, type EndpointsChangedEvent } from "weft";
import { ETCD_INSTALL, etcdVersion, startEtcd, type LocalEtcd } from "./etcd.js";
import { Instances, wallMs, type Instance } from "./instances.js";
import { Traffic, type Bucket } from "./traffic.js";

const PREFIX = "/services/catalog/";
const RUN_MS = 8_000;
const RATE_PER_SECOND = 200;
const MAX_IN_FLIGHT = 16;
const TERMINATE_AT_MS = 2_000;
const KILL_AT_MS = 3_500;
const RESTART_AT_MS = 5_000;

if (etcdVersion() === undefined) {
  console.error(`etcd-mesh needs etcd: ${ETCD_INSTALL} (or set ETCD_BIN=/path/to/etcd)`);
  process.exit(1);
}

const instances = new Instances();
let etcd: LocalEtcd | undefined;
let closeMesh: (() => Promise<void>) | undefined;
let cleaning: Promise<void> | undefined;
let stoppedPrinted = false;
/** Stops everything this run started, in order: the caller, the instances (they deregister), etcd. */
const cleanup = (): Promise<void> =>
  (cleaning ??= (async () => {
    await closeMesh?.().catch(() => {});
    await instances.stopAll();
    await etcd?.close();
  })());
// Last resort (an exit we did not plan): SIGKILL by pid, remove the data dir, synchronously.
process.once("exit", () => {
  instances.killNow();
  etcd?.killNow();
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    console.log(`\n${signal}: stopping the instances and etcd`);
    void cleanup().finally(() => {
      printStopped();
      process.exit(signal === "SIGINT" ? 130 : 143);
    });
  });
}

const t0 = { ms: 0 };
const at = (wall: number): string => `${((wall - t0.ms) / 1000).toFixed(2).padStart(5)} s`;
const ms = (value: number | undefined): string =>
  value === undefined ? "not seen" : `${Math.round(value).toLocaleString("en-US")} ms`;

/** Each endpoint change the caller saw, with the wall-clock time it saw it. */
const seen: { atMs: number; event: EndpointsChangedEvent }[] = [];
const names = new Map<string, string>();
const nameOf = (url: string): string => names.get(url) ?? url;
const firstSeen = (url: string, kind: "added" | "removed", afterMs: number): number | undefined =>
  seen.find((s) => s.atMs >= afterMs && s.event[kind].includes(url))?.atMs;

async function main(): Promise<void> {
  console.log("weft etcd-mesh — three catalog instances register in etcd; a caller finds them through a watch\n");
  etcd = await startEtcd();
  console.log(`etcd ${etcd.version} on ${etcd.url} (pid ${etcd.pid}, data dir ${etcd.dataDir})`);
  const hosts = [etcd.url];
  const first = await Promise.all(
    ["instance-1", "instance-2", "instance-3"].map((name) => instances.start(name, etcd!.url, PREFIX)),
  );
  for (const i of first) {
    names.set(i.url, i.name);
    console.log(`${i.name} listening on ${i.url} (pid ${i.pid}), registered under ${PREFIX} with a 2 s lease`);
  }

  const mesh = createMesh({ onWarning: (message) => console.log(`  warning: ${message}`) });
  closeMesh = () => mesh.close();
  const catalog = mesh.client("catalog", {
    discovery: etcdDiscovery({ hosts, prefix: PREFIX }),
    timeout: { attemptMs: 500, totalMs: 2_000 },
    // Slow start ramps a joining instance over 30 s by default; 2 s so this run shows the ramp.
    slowStart: { windowMs: 2_000 },
  });
  catalog.events.onEndpointsChanged((event) => onChange(catalog, event));
  catalog.events.onEndpointHealth((e) =>
    console.log(
      `${at(wallMs())}  outlier detection: ${nameOf(e.endpoint)} ${e.kind}${e.reason ? ` (${e.reason})` : ""}`,
    ),
  );
  let stale = false;
  catalog.events.onDiscoveryState((e) => {
    if (e.stale !== stale)
      console.log(
        `${at(wallMs())}  discovery ${e.stale ? `stale (${e.lastError}): the last good set keeps serving` : "fresh again"}`,
      );
    stale = e.stale;
  });
  await waitFor(() => catalog.snapshot().endpoints.length === 3, 5_000, "the caller to discover the three instances");
  console.log(
    `caller: mesh.client("catalog", { discovery: etcdDiscovery({ hosts, prefix: "${PREFIX}" }) }) sees 3 endpoints`,
  );
  console.log(`traffic: ${RATE_PER_SECOND} calls/s, at most ${MAX_IN_FLIGHT} in flight, for ${RUN_MS / 1000} s\n`);

  const traffic = new Traffic(catalog, { ratePerSecond: RATE_PER_SECOND, maxInFlight: MAX_IN_FLIGHT });
  t0.ms = wallMs();
  traffic.start();
  const [, second, third] = first as [Instance, Instance, Instance];
  const actions: Promise<void>[] = [];
  const errors: unknown[] = [];
  // Errors are kept and thrown after the run, so none is left unhandled while the run goes on.
  const schedule = (delayMs: number, action: () => Promise<void>): void => {
    actions.push(
      new Promise((resolve) =>
        setTimeout(
          () =>
            void action()
              .catch((error: unknown) => errors.push(error))
              .finally(resolve),
          delayMs,
        ),
      ),
    );
  };
  const marks = { terminated: 0, killed: 0, restarted: 0 };
  let again: Instance | undefined;
  schedule(TERMINATE_AT_MS, async () => {
    marks.terminated = wallMs();
    console.log(`${at(marks.terminated)}  → SIGTERM ${second.name} (pid ${second.pid}): graceful, deregisters at once`);
    await instances.terminate(second);
  });
  schedule(KILL_AT_MS, async () => {
    marks.killed = wallMs();
    console.log(
      `${at(marks.killed)}  → SIGKILL ${third.name} (pid ${third.pid}): a crash, its key stays until the lease expires`,
    );
    await instances.kill(third);
  });
  schedule(RESTART_AT_MS, async () => {
    marks.restarted = wallMs();
    console.log(`${at(marks.restarted)}  → starting ${second.name} again`);
    again = await instances.start(second.name, etcd!.url, PREFIX);
    names.set(again.url, again.name);
    console.log(`${at(again.registeredAtMs)}  ${again.name} registered as ${again.url} (pid ${again.pid})`);
  });

  for (let s = 1; s <= RUN_MS / 1000; s++) {
    await sleep(t0.ms + s * 1000 - wallMs());
    printSecond(s, traffic.take(), catalog);
  }
  await traffic.stop();
  await Promise.all(actions);
  if (errors.length > 0) throw errors[0];

  const total = traffic.total;
  const failures = [...traffic.failures].map(([reason, n]) => `${reason} ×${n}`).join(", ");
  console.log(
    `\nsummary: ${total.sent} calls — ${total.ok} ok, ${total.failed} failed${failures ? ` (${failures})` : ""}; ${total.retries} attempts retried; ${total.skipped} not sent (in-flight bound)`,
  );
  const left = firstSeen(second.url, "removed", marks.terminated);
  console.log(
    `  ${second.name} SIGTERM → left the caller's set after ${ms(left === undefined ? undefined : left - marks.terminated)}` +
      (second.deregisteringAtMs !== undefined && left !== undefined
        ? ` (its lease revoke sent → seen: ${ms(left - second.deregisteringAtMs)})`
        : ""),
  );
  const gone = firstSeen(third.url, "removed", marks.killed);
  console.log(
    `  ${third.name} SIGKILL → left the caller's set after ${ms(gone === undefined ? undefined : gone - marks.killed)} (when its 2 s lease expired)`,
  );
  const back = again === undefined ? undefined : firstSeen(again.url, "added", marks.restarted);
  console.log(
    `  ${second.name} started again → joined the caller's set ${ms(back === undefined ? undefined : back - marks.restarted)} after the spawn` +
      (again !== undefined && back !== undefined
        ? ` (its lease grant + put sent → seen: ${ms(back - again.registeringAtMs)})`
        : ""),
  );
  if (total.failed > 0) process.exitCode = 1;
}

function onChange(catalog: Client, event: EndpointsChangedEvent): void {
  const now = wallMs();
  seen.push({ atMs: now, event });
  for (const e of catalog.snapshot().discovery.endpoints)
    if (e.metadata?.instance !== undefined) names.set(e.url, e.metadata.instance);
  if (t0.ms === 0) return; // the first listing, before the run
  const diff = [...event.removed.map((u) => `−${nameOf(u)}`), ...event.added.map((u) => `+${nameOf(u)}`)].join(" ");
  console.log(
    `${at(now)}  ← caller's endpoints ${diff} → ${event.endpoints.length} (${event.endpoints.map(nameOf).sort().join(", ")})`,
  );
}

function printSecond(s: number, bucket: Bucket, catalog: Client): void {
  const snapshot = catalog.snapshot();
  const answered = [...bucket.answeredBy]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, n]) => `${name} ${n}`)
    .join(", ");
  console.log(
    `${String(s).padStart(2)} s  ok ${String(bucket.ok).padStart(3)}  failed ${bucket.failed}  retries ${String(bucket.retries).padStart(2)}  ` +
      `endpoints ${snapshot.endpoints.length}  stale ${snapshot.discovery.stale ? "yes" : "no"}  answered: ${answered || "none"}`,
  );
}

async function waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function sleep(delayMs: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, delayMs)));
}

try {
  await main();
} catch (error) {
  console.error(`etcd-mesh failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
} finally {
  await cleanup();
  printStopped();
}

function printStopped(): void {
  if (stoppedPrinted) return;
  stoppedPrinted = true;
  console.log(
    `\nstopped: instances (pids ${instances.pids.join(", ")}) and etcd (pid ${etcd?.pid ?? "-"}); data dir removed`,
  );
}

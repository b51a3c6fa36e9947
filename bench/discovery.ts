/**
 * Discovery latency: how long a change in the registry takes to reach a weft client's endpoint
 * set — the moment `client.events.onEndpointsChanged` reports it, i.e. what the balancer picks
 * from. Issue 5's targets: an etcd change within 100 ms on loopback; a DNS change within its
 * bound, the record TTL or `minRefreshMs` (whichever is larger) plus one query.
 *
 * etcd (a real etcd on loopback ports, test/helpers/etcd.ts): a client with `etcdDiscovery` on a
 * prefix holding two fixed keys (never emptied: an empty answer is not published, see
 * docs/discovery.md). Then `discoveryChanges` times (200; 50 with --quick): put a new key, time
 * from just before the put to the client's `added` event; pause 1–10 ms; delete it, time to
 * `removed`; pause again. The writer is weft's own etcd gateway client in this process, so each
 * figure includes the put's HTTP round trip, etcd's commit and the watch stream's delivery.
 * Then 20 cycles of `etcdRegistration()` (lease grant + put) → added, and `registration.close()`
 * (lease revoke) → removed.
 *
 * DNS (a real dnsmasq on a loopback port, test/helpers/dnsmasq.ts, local TTL 1 s): a client with
 * `dnsDiscovery({ type: "A", minRefreshMs: 1000 })` re-queries every max(TTL, minRefreshMs) = 1 s.
 * `dnsChanges` times (15; 6 with --quick), after a random pause of 0–1 s (so the change lands at
 * a random phase of the refresh cycle): add or remove an address in dnsmasq's hosts file and
 * SIGHUP it, timed from just before the write to the client's event. Expected: uniform over
 * 0–1 s plus a query; the bound is 1 s plus a query (checked as ≤ 1.1 s).
 *
 * A missing binary skips its sub-part with the install command. Run alone:
 * `npx tsx bench/discovery.ts [--quick] [--discovery-changes=n] [--dns-changes=n]`.
 */
import { spawnSync } from "node:child_process";
import { pathToFileURL } from "node:url";
import { createMesh, dnsDiscovery, etcdDiscovery, etcdRegistration, type Client } from "weft";
import { EtcdClient } from "../src/etcd/client.js";
import { DNSMASQ_INSTALL, dnsmasqBinary, startDnsmasq } from "../test/helpers/dnsmasq.js";
import { fmt, machineLine, percentile, printTable, readSettings, sleep, type BenchSettings } from "./lib.js";

/** An etcd change must reach the endpoint set within this, ms (p99 judged; max shown). */
export const ETCD_TARGET_MS = 100;
/** DNS: TTL 1 s and minRefreshMs 1000, so a change is seen within 1 s plus a query. */
export const DNS_REFRESH_MS = 1000;
/** Allowance over the refresh period for the query and timer lateness, ms. */
export const DNS_SLACK_MS = 100;
const REGISTRATION_CYCLES = 20;
/** A change not seen within this long counts as missed. */
const WAIT_MS = 3000;

export const DISCOVERY_ROW = {
  put: "etcd put → added",
  delete: "etcd delete → removed",
  register: "etcdRegistration() → added",
  close: "registration.close() → removed",
  dns: "DNS A change + SIGHUP → set",
} as const;

export interface LatencyRow {
  readonly name: string;
  /** Milliseconds, sorted; missed changes are not in it. */
  readonly ms: readonly number[];
  readonly missed: number;
}

export interface DiscoveryResult {
  readonly rows: readonly LatencyRow[];
  /** Why a sub-part did not run, by backend. */
  readonly skipped: { readonly etcd?: string; readonly dns?: string };
  /** DNS: how long dnsmasq took to re-read its hosts file after SIGHUP (median, ms). */
  readonly dnsReloadMs?: number;
}

/** Resolves waiters when the client reports `url` added or removed, with the time it did. */
class ChangeWatch {
  readonly #waiters = new Set<{ url: string; kind: "added" | "removed"; resolve: (at: number | undefined) => void }>();
  readonly #dispose: () => void;

  constructor(client: Client) {
    this.#dispose = client.events.onEndpointsChanged((event) => {
      const at = performance.now();
      for (const waiter of this.#waiters) {
        if (!event[waiter.kind].includes(waiter.url)) continue;
        this.#waiters.delete(waiter);
        waiter.resolve(at);
      }
    });
  }

  /** Call before making the change. Resolves with the time it was seen, or undefined after WAIT_MS. */
  expect(url: string, kind: "added" | "removed"): Promise<number | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        resolve(undefined);
      }, WAIT_MS);
      const waiter = { url, kind, resolve: (at: number | undefined) => (clearTimeout(timer), resolve(at)) };
      this.#waiters.add(waiter);
    });
  }

  close(): void {
    this.#dispose();
  }
}

/** Collects one row's samples: `time(change)` runs the change and records how long until it was seen. */
class Row {
  readonly samples: number[] = [];
  missed = 0;
  constructor(readonly name: string) {}

  async time(seen: Promise<number | undefined>, change: () => Promise<unknown>): Promise<void> {
    const started = performance.now();
    await change();
    const at = await seen;
    if (at === undefined) this.missed++;
    else this.samples.push(at - started);
  }

  done(): LatencyRow {
    return { name: this.name, ms: [...this.samples].sort((a, b) => a - b), missed: this.missed };
  }
}

async function waitFor(predicate: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`discovery bench: timed out waiting for ${what}`);
    await sleep(10);
  }
}

const pause = (minMs: number, maxMs: number): Promise<void> => sleep(minMs + Math.random() * (maxMs - minMs));

async function runEtcd(settings: BenchSettings): Promise<LatencyRow[] | string> {
  if (spawnSync("etcd", ["--version"], { stdio: "ignore" }).status !== 0)
    return "etcd is not installed: apt-get install -y etcd-server";
  // Imported only once etcd is known to run: the helper warns at import when it is missing.
  const { startEtcd } = await import("../test/helpers/etcd.js");
  const etcd = await startEtcd();
  const hosts = [etcd.url];
  const prefix = "/bench/catalog/";
  const kv = new EtcdClient({ hosts });
  const mesh = createMesh({ onWarning: (message) => console.log(`  warning: ${message}`) });
  try {
    for (const port of [1001, 1002])
      await kv.put(`${prefix}base-${port}`, JSON.stringify({ url: `http://127.0.0.1:${port}` }));
    const client = mesh.client("bench-etcd", { discovery: etcdDiscovery({ hosts, prefix }) });
    const watch = new ChangeWatch(client);
    await waitFor(() => client.snapshot().endpoints.length === 2, "the first etcd listing");
    const put = new Row(DISCOVERY_ROW.put);
    const del = new Row(DISCOVERY_ROW.delete);
    for (let i = 0; i < settings.discoveryChanges; i++) {
      const url = `http://127.0.0.1:${20_000 + i}`;
      const key = `${prefix}k${i}`;
      await put.time(watch.expect(url, "added"), () => kv.put(key, JSON.stringify({ url })));
      await pause(1, 10);
      await del.time(watch.expect(url, "removed"), () => kv.delete(key));
      await pause(1, 10);
    }
    const register = new Row(DISCOVERY_ROW.register);
    const close = new Row(DISCOVERY_ROW.close);
    const cycles = settings.quick ? REGISTRATION_CYCLES / 2 : REGISTRATION_CYCLES;
    for (let i = 0; i < cycles; i++) {
      const url = `http://127.0.0.1:${30_000 + i}`;
      let registration: Awaited<ReturnType<typeof etcdRegistration>> | undefined;
      await register.time(
        watch.expect(url, "added"),
        async () => (registration = await etcdRegistration({ hosts, prefix, url, ttlSeconds: 10 })),
      );
      await pause(1, 10);
      await close.time(watch.expect(url, "removed"), () => registration?.close() ?? Promise.resolve());
      await pause(1, 10);
    }
    watch.close();
    return [put.done(), del.done(), register.done(), close.done()];
  } finally {
    await mesh.close();
    await kv.close();
    await etcd.close();
  }
}

async function runDns(settings: BenchSettings): Promise<{ row: LatencyRow; reloadMs: number } | string> {
  if (dnsmasqBinary === undefined) return `dnsmasq is not installed: ${DNSMASQ_INSTALL}`;
  const name = "catalog.bench.test";
  const one = `127.0.0.2 ${name}\n`;
  const two = `${one}127.0.0.3 ${name}\n`;
  const moving = "http://127.0.0.3:8080";
  const dns = await startDnsmasq({ hosts: one, ttl: 1 });
  const mesh = createMesh({ onWarning: (message) => console.log(`  warning: ${message}`) });
  try {
    const client = mesh.client("bench-dns", {
      discovery: dnsDiscovery({ name, type: "A", port: 8080, servers: [dns.server], minRefreshMs: DNS_REFRESH_MS }),
    });
    const watch = new ChangeWatch(client);
    await waitFor(() => client.snapshot().endpoints.length === 1, "the first DNS answer");
    const row = new Row(DISCOVERY_ROW.dns);
    const reloads: number[] = [];
    for (let i = 0; i < settings.dnsChanges; i++) {
      // Just after the last change was seen the refresh cycle is at phase 0: a uniform pause over
      // one period puts the next change at a random phase of it.
      await pause(0, DNS_REFRESH_MS);
      const adding = i % 2 === 0;
      await row.time(watch.expect(moving, adding ? "added" : "removed"), async () => {
        const started = performance.now();
        await dns.setHosts(adding ? two : one); // writes the file, SIGHUPs dnsmasq, waits for its "read" log line
        reloads.push(performance.now() - started);
      });
    }
    watch.close();
    return {
      row: row.done(),
      reloadMs: percentile(
        [...reloads].sort((a, b) => a - b),
        50,
      ),
    };
  } finally {
    await mesh.close();
    await dns.close();
  }
}

export async function runDiscovery(settings: BenchSettings): Promise<DiscoveryResult> {
  const rows: LatencyRow[] = [];
  const skipped: { etcd?: string; dns?: string } = {};
  const etcd = await runEtcd(settings);
  if (typeof etcd === "string") skipped.etcd = etcd;
  else rows.push(...etcd);
  const dns = await runDns(settings);
  if (typeof dns === "string") skipped.dns = dns;
  else rows.push(dns.row);
  return { rows, skipped, ...(typeof dns === "string" ? {} : { dnsReloadMs: dns.reloadMs }) };
}

/** The row named `name`, or undefined when its sub-part was skipped. */
export function discoveryRow(result: DiscoveryResult, name: string): LatencyRow | undefined {
  return result.rows.find((r) => r.name === name);
}

export function printDiscovery(result: DiscoveryResult): void {
  if (result.skipped.etcd !== undefined) console.log(`[skip] etcd: ${result.skipped.etcd}`);
  if (result.skipped.dns !== undefined) console.log(`[skip] DNS: ${result.skipped.dns}`);
  if (result.rows.length === 0) return;
  const ms = (v: number): string => fmt(v, v < 10 ? 2 : v < 100 ? 1 : 0);
  printTable(
    ["change → client's endpoint set", "n", "min ms", "median ms", "p90 ms", "p99 ms", "max ms", "missed", "bound"],
    result.rows.map((r) => [
      r.name,
      fmt(r.ms.length),
      ms(r.ms[0] ?? Number.NaN),
      ms(percentile(r.ms, 50)),
      ms(percentile(r.ms, 90)),
      ms(percentile(r.ms, 99)),
      ms(r.ms.at(-1) ?? Number.NaN),
      fmt(r.missed),
      r.name === DISCOVERY_ROW.dns
        ? `≤ ${fmt(DNS_REFRESH_MS + DNS_SLACK_MS)} (TTL 1 s + query)`
        : `< ${ETCD_TARGET_MS} (p99)`,
    ]),
  );
  console.log(
    `(timed from just before the write to the client's onEndpointsChanged; etcd rows include the put's own HTTP round trip; ` +
      `missed = not seen within ${WAIT_MS / 1000} s` +
      (result.dnsReloadMs === undefined
        ? ")"
        : `; dnsmasq re-read its hosts file a median ${fmt(result.dnsReloadMs, 1)} ms after the write + SIGHUP)`),
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const settings = readSettings();
  console.log(`weft discovery bench — ${machineLine()}${settings.quick ? " (quick)" : ""}\n`);
  printDiscovery(await runDiscovery(settings));
}

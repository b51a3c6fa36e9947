/** The examples the docs point to run and exit by themselves. */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { runScript, type ScriptRun } from "../helpers/script.js";

// Checked here rather than through test/helpers/etcd.ts, whose import throws in CI when etcd is
// missing: that would fail this file's other examples too, not just the one that needs etcd.
const etcdInstalled = spawnSync("etcd", ["--version"], { stdio: "ignore" }).status === 0;
const inCI = process.env.CI !== undefined && process.env.CI !== "";
if (!etcdInstalled && !inCI)
  console.warn("skipping the etcd-mesh example: etcd is not installed (apt-get install -y etcd-server)");

/** True while a process with this pid exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

const run = (file: string, guardMs = 30_000): Promise<ScriptRun> => runScript([file], guardMs);

describe("examples", () => {
  it("getting-started runs, retries a slow call as documented, and exits", async () => {
    const { code, stdout, stderr } = await run("examples/getting-started.ts");
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toMatch(/request: 200/);
    expect(stdout).toMatch(/fetch: 200/);
    // Each of the 3 attempts hits the 300 ms per-try timeout; the retries go to the other replica first.
    expect(stdout).toMatch(/slow call: WEFT_ERR_ATTEMPTS after 3 attempt\(s\), last: WEFT_ERR_ATTEMPT_TIMEOUT/);
    expect(stdout.match(/retry #\d after/g)).toHaveLength(2);
  });

  it("policy retries, times out and trips its breaker around a TCP query, and exits", async () => {
    const { code, stdout, stderr } = await run("examples/policy/main.ts");
    const output = `stdout:\n${stdout}\nstderr:\n${stderr}`;
    expect(stderr, output).toBe("");
    expect(code, output).toBe(0);
    expect(stdout, output).toMatch(/^sku-1: 42 in stock \(.*2 connection\(s\)\)$/m);
    expect(stdout, output).toMatch(/attempt timeout after 200 ms[\s\S]*^sku-2: 42 in stock/m);
    expect(stdout, output).toMatch(/^sku-3: WEFT_ERR_ATTEMPTS, last: ECONNRESET \(.*3 connection\(s\)\)$/m);
    expect(stdout, output).toMatch(/^sku-5: WEFT_ERR_BREAKER_OPEN \(.*0 connection\(s\)\)$/m);
    expect(stdout, output).toMatch(/breaker open → halfOpen\n {2}breaker halfOpen → closed\nsku-6: 42 in stock/);
  });

  it.skipIf(!etcdInstalled && !inCI)(
    "etcd-mesh loses no call while instance-2 leaves and comes back and instance-3 crashes, and leaves no process behind",
    async () => {
      if (!etcdInstalled) throw new Error("etcd is not installed: apt-get install -y etcd-server (Debian/Ubuntu)");
      const started = Date.now();
      const { code, stdout, stderr } = await run("examples/etcd-mesh/main.ts");
      const output = `stdout:\n${stdout}\nstderr:\n${stderr}`;
      expect(code, output).toBe(0);
      expect(Date.now() - started, "runs in under 20 s").toBeLessThan(20_000);
      expect(stderr, output).toBe("");
      expect(stdout, output).toMatch(/^summary: (\d+) calls — \1 ok, 0 failed/m);
      // instance-2 leaves on SIGTERM, the crashed instance-3 leaves when its lease expires, instance-2 comes back.
      expect(stdout, output).toMatch(/← caller's endpoints −instance-2 → 2/);
      // (The last two may land in either order, or in one watch batch: the lease's expiry is not exact.)
      expect(stdout, output).toMatch(/← caller's endpoints .*−instance-3/);
      expect(stdout, output).toMatch(/← caller's endpoints .*\+instance-2/);
      expect(stdout, output).toMatch(/instance-2 SIGTERM → left the caller's set after \d+ ms/);
      expect(stdout, output).toMatch(/instance-2 started again → joined the caller's set [\d,]+ ms after the spawn/);
      // Once back in the set, the restarted instance-2 answers calls.
      const afterReturn = stdout.slice(stdout.search(/← caller's endpoints .*\+instance-2/));
      expect(afterReturn, output).toMatch(/^ ?\d s .*answered: .*instance-2 \d+/m);
      // Every process it started is gone: the four instances and etcd.
      const pids = /stopped: instances \(pids ([\d, ]+)\) and etcd \(pid (\d+)\)/.exec(stdout);
      expect(pids, output).not.toBeNull();
      const all = [...(pids?.[1] ?? "").split(", ").map(Number), Number(pids?.[2])];
      expect(all).toHaveLength(5);
      expect(all.filter(alive), "processes left running").toEqual([]);
    },
    40_000,
  );

  it.skipIf(!etcdInstalled && !inCI)(
    "canary rolls v2 out with `weft config put` (0, 10, 50, 100 %): no call fails, each step's v2 share matches its weight, and no process is left",
    async () => {
      if (!etcdInstalled) throw new Error("etcd is not installed: apt-get install -y etcd-server (Debian/Ubuntu)");
      const started = Date.now();
      const { code, stdout, stderr } = await run("examples/canary/main.ts", 60_000);
      const output = `stdout:\n${stdout}\nstderr:\n${stderr}`;
      expect(code, output).toBe(0);
      // ~15 s on an idle 2-core machine (four CLI processes at ~1 s each, four 2 s holds); generous for a busy one.
      expect(Date.now() - started, "runs in under 45 s").toBeLessThan(45_000);
      expect(stderr, output).toBe("");
      expect(stdout, output).toMatch(/^summary: (\d+) calls \(\d+ POSTs\) — \1 ok, 0 failed/m);
      // The table: step, weight, version, write → applied, put (process), calls, v1, v2, v2 share, failed.
      const table = /^ +(\d) +(\d+) % +rev \d+ +([\d,]+) ms +[\d,]+ ms +(\d+) +(\d+) +(\d+) +[\d.]+ % +(\d+)$/gm;
      const rows = [...stdout.matchAll(table)].map((m) => ({
        weight: Number(m[2]),
        applyMs: Number(m[3]?.replace(/,/g, "")),
        calls: Number(m[4]),
        v1: Number(m[5]),
        v2: Number(m[6]),
        failed: Number(m[7]),
      }));
      expect(
        rows.map((r) => r.weight),
        output,
      ).toEqual([0, 10, 50, 100]);
      for (const row of rows) {
        const label = `v2 at ${row.weight} %: ${JSON.stringify(row)}`;
        expect(row.failed, label).toBe(0);
        expect(row.v1 + row.v2, label).toBe(row.calls);
        // Hundreds of calls per step, each counted under the version applied when it was sent.
        expect(row.calls, label).toBeGreaterThan(200);
        expect(row.applyMs, label).toBeLessThan(2000);
        if (row.weight === 0) expect(row.v2, label).toBe(0);
        else if (row.weight === 100) expect(row.v1, label).toBe(0);
        else {
          // A weighted random pick: binomial, within 4.5 standard deviations (a false alarm ~1 in 100 000).
          const p = row.weight / 100;
          const sigma = Math.sqrt((p * (1 - p)) / row.calls);
          expect(Math.abs(row.v2 / row.calls - p), label).toBeLessThanOrEqual(4.5 * sigma);
        }
      }
      const pids = /stopped: instances \(pids ([\d, ]+)\) and etcd \(pid (\d+)\)/.exec(stdout);
      expect(pids, output).not.toBeNull();
      const all = [...(pids?.[1] ?? "").split(", ").map(Number), Number(pids?.[2])];
      expect(all).toHaveLength(4);
      expect(all.filter(alive), "processes left running").toEqual([]);
    },
    70_000,
  );
});

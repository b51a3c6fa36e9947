/**
 * `weft config` against a real etcd (Debian `etcd-server`) on loopback, with real weft clients
 * following the documents it writes (`etcdConfig`) over real HTTP servers. The CLI runs
 * in-process through `main(argv, io)` with its output captured, and once as its own process
 * through tsx. Each test has a prefix of its own.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMesh, etcdConfig, staticDiscovery, type Client, type ConfigEvent } from "weft";
import { canonicalJson, sha256 } from "../../src/cli/store.js";
import { main } from "../../src/cli/main.js";
import { parseConfigText } from "../../src/config/parse.js";
import { EtcdClient } from "../../src/etcd/client.js";
import { hasEtcd, startEtcd, type TestEtcd } from "../helpers/etcd.js";
import { scoped, server } from "../helpers/scope.js";
import { refusedPort } from "../helpers/server.js";
import { until } from "../helpers/until.js";

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** performance.now() when the command started and returned. */
  readonly startedAt: number;
  readonly endedAt: number;
}

/** Runs `weft …` in-process, output captured. */
async function weft(...argv: string[]): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const startedAt = performance.now();
  const code = await main(argv, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    env: { USER: "tester" },
  });
  return { code, stdout, stderr, startedAt, endedAt: performance.now() };
}

/** The revision a put or rollback printed ("revision 42 written"). */
const written = (run: Run): number => Number(/revision (\d+) written/.exec(run.stdout)?.[1] ?? NaN);

/** A 100 % / weighted split of the catalog's calls between the v1 and v2 subsets. */
const split = (v1: number, v2: number, totalMs = 2000): string =>
  [
    "# the catalog canary",
    "timeout:",
    `  totalMs: ${totalMs}`,
    "routes:",
    "  - name: canary",
    "    backends:",
    "      - subset: { version: v1 }",
    `        weight: ${v1}`,
    "      - subset: { version: v2 }",
    `        weight: ${v2}`,
    "",
  ].join("\n");

/** put returned → client applied, ms (negative: applied first), for every put a client followed (logged at the end). */
const applyLatencies: number[] = [];
/** put started → client applied, ms. */
const putToApplied: number[] = [];

describe.skipIf(!hasEtcd)("weft config (a real etcd)", () => {
  let etcd: TestEtcd;
  let kv: EtcdClient;
  let dir: string;
  let n = 0;

  beforeAll(async () => {
    etcd = await startEtcd();
    kv = new EtcdClient({ hosts: [etcd.url] });
    dir = await mkdtemp(join(tmpdir(), "weft-config-cli-"));
  });
  afterAll(async () => {
    const summary = (values: number[]): string => {
      const sorted = [...values].sort((a, b) => a - b);
      return `${sorted.map((ms) => ms.toFixed(1)).join(", ")} ms (median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(1)}, max ${sorted.at(-1)?.toFixed(1)})`;
    };
    if (applyLatencies.length > 0)
      console.log(
        `weft config put (in-process), ${applyLatencies.length} puts a client followed:\n` +
          `  put returned → client applied: ${summary(applyLatencies)}; negative: applied before the put returned\n` +
          `  put started → client applied: ${summary(putToApplied)}`,
      );
    await kv?.close();
    await etcd?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** A fresh prefix, and `weft config <command> --etcd … --prefix …` under it. */
  function scope() {
    const prefix = `/cli-${++n}/`;
    return {
      prefix,
      config: (command: string, ...rest: string[]) =>
        weft("config", command, "--etcd", etcd.url, "--prefix", prefix, ...rest),
    };
  }

  async function file(name: string, text: string): Promise<string> {
    const path = join(dir, `${++n}-${name}`);
    await writeFile(path, text);
    return path;
  }

  /** Two servers answering their version, and a client of them following `prefix + "catalog"`. */
  async function catalogClient(prefix: string) {
    const [v1, v2] = await Promise.all([server((_req, res) => res.end("v1")), server((_req, res) => res.end("v2"))]);
    const warnings: string[] = [];
    const mesh = scoped(createMesh({ onWarning: (message) => warnings.push(message) }));
    const client = mesh.client("catalog", {
      discovery: staticDiscovery([
        { url: v1.url, metadata: { version: "v1" } },
        { url: v2.url, metadata: { version: "v2" } },
      ]),
      configSource: etcdConfig({ hosts: [etcd.url], prefix }),
    });
    const events: (ConfigEvent & { at: number })[] = [];
    client.events.onConfig((e) => events.push({ ...e, at: performance.now() }));
    return {
      client,
      warnings,
      events,
      /** Waits until `run`'s revision is applied; records how long after the command returned. */
      applied: async (run: Run): Promise<void> => {
        const version = `rev ${written(run)}`;
        await until(
          () => events.some((e) => e.kind === "applied" && e.version === version),
          `the client to apply ${version}`,
          5000,
          1,
        );
        const at = events.find((e) => e.kind === "applied" && e.version === version)?.at as number;
        // Negative when the client applied it before the command had returned (its watch event
        // can arrive before the transaction's answer is read).
        const ms = at - run.endedAt;
        applyLatencies.push(ms);
        putToApplied.push(at - run.startedAt);
        expect(ms, "put → applied").toBeLessThan(2000);
      },
    };
  }

  /** Who answers `count` calls: "v1" / "v2" → how many. */
  async function answers(client: Client, count = 40): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (let i = 0; i < count; i++) {
      const res = await client.request({ path: "/" });
      const body = await res.text();
      counts[body] = (counts[body] ?? 0) + 1;
    }
    return counts;
  }

  it("puts a YAML file as canonical JSON with its meta, and gets it back with its revision and who wrote it", async () => {
    const { prefix, config } = scope();
    const path = await file("catalog.yaml", split(90, 10));
    const put = await config("put", "--message", "canary at 10 %", "--by", "alice@ops", "catalog", path);
    expect(put, put.stderr).toMatchObject({ code: 0, stderr: "" });
    expect(put.stdout).toMatch(/^"catalog": revision \d+ written \(its first version\)\n$/);
    const revision = written(put);

    // What clients and `etcdctl get` read: one format, whatever the operator wrote.
    const document = parseConfigText(await readFile(path, "utf8"), path);
    const stored = await kv.range(`${prefix}catalog`);
    expect(stored.kv?.modRevision).toBe(revision);
    expect(stored.kv?.value).toBe(canonicalJson(document));
    expect(stored.kv?.value).toBe(`${JSON.stringify(JSON.parse(stored.kv?.value ?? ""), null, 2)}\n`);
    const meta = JSON.parse((await kv.range(`${prefix}.meta/catalog`)).kv?.value ?? "");
    expect(meta).toEqual({
      by: "alice@ops",
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      message: "canary at 10 %",
      sha256: sha256(stored.kv?.value ?? ""),
    });

    const get = await config("get", "catalog");
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toMatch(
      new RegExp(`^# "catalog" revision ${revision}: written by alice@ops at \\S+: "canary at 10 %"\n`),
    );
    expect(parseConfigText(get.stdout, "get")).toEqual(document);
    // --json: the document alone on stdout (a file put takes back), the rest on stderr.
    const json = await config("get", "--json", "catalog");
    expect(JSON.parse(json.stdout)).toEqual(document);
    expect(json.stderr).toContain(`"catalog" revision ${revision}: written by alice@ops`);
    // The same document again: nothing to write.
    const again = await config("put", "catalog", path);
    expect(again.stdout).toBe(
      `no changes: revision ${revision} of "catalog" already holds this config; nothing written\n`,
    );
    expect((await kv.range(`${prefix}catalog`)).kv?.modRevision).toBe(revision);
    // The default author: $USER@hostname.
    const second = await config("put", "catalog", await file("b.yaml", split(50, 50)));
    expect(JSON.parse((await kv.range(`${prefix}.meta/catalog`)).kv?.value ?? "").by).toMatch(/^tester@/);
    expect(second.stdout).toContain(`(revision ${revision} kept in history)`);
  });

  it("refuses an invalid file, naming the path in the document and the value, and writes nothing", async () => {
    const { prefix, config } = scope();
    const before = await kv.rangePrefix(prefix);
    const bad = await file("bad.yaml", split(90, -5));
    const put = await config("put", "catalog", bad);
    expect(put.code).toBe(1);
    expect(put.stdout).toBe("");
    expect(put.stderr).toMatch(
      /^weft config put: refused: .*bad\.yaml is not a valid config for "catalog": invalid option routes\[0\]\.backends\[1\]\.weight: got -5; expected .*; nothing written\n$/,
    );
    // Nothing under the prefix, and the store did not move at all.
    const after = await kv.rangePrefix(prefix);
    expect(after).toEqual({ revision: before.revision, kvs: [] });

    const unknown = await config("put", "catalog", await file("typo.yaml", "timeout:\n  totalMS: 100\n"));
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown option timeout\.totalMS \(did you mean timeout\.totalMs\?\)/);
    const broken = await config("put", "catalog", await file("broken.yaml", "routes: [\n"));
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(
      /refused: .*broken\.yaml does not parse: .* at line \d+, column \d+; nothing written/,
    );
    expect((await weft("config", "validate", "catalog", bad)).stderr).toMatch(
      /routes\[0\]\.backends\[1\]\.weight: got -5/,
    );
    const valid = await weft("config", "validate", "catalog", await file("ok.yaml", split(1, 1)));
    expect(valid).toMatchObject({ code: 0, stdout: expect.stringMatching(/is a valid config for "catalog"\n$/) });
    expect((await kv.rangePrefix(prefix)).kvs).toEqual([]);
  });

  it("a raw etcd put of an invalid document: the client keeps its last good version and says why; the next good put applies", async () => {
    const { prefix, config } = scope();
    const c = await catalogClient(prefix);
    const good = await config("put", "-m", "all on v1", "catalog", await file("v1.yaml", split(100, 0)));
    await c.applied(good);
    expect(await answers(c.client)).toEqual({ v1: 40 });

    // Behind the CLI's back: etcdctl-style, no validation, no meta.
    const raw = await kv.put(`${prefix}catalog`, split(-1, 100));
    await until(() => c.client.snapshot().routing?.config?.lastRejected != null, "the client to reject the raw put");
    const routing = c.client.snapshot().routing;
    expect(routing?.version).toBe(`rev ${written(good)}`);
    expect(routing?.config?.lastRejected).toEqual({
      version: `rev ${raw}`,
      error: expect.stringMatching(/routes\[0\]\.backends\[0\]\.weight: got -1/),
    });
    expect(c.warnings.join("\n")).toMatch(
      new RegExp(
        `weft config etcd:${prefix}catalog@.* \\(rev ${raw}\\) for "catalog": rejected: .*routes\\[0\\]\\.backends\\[0\\]\\.weight: got -1.*; keeping rev ${written(good)}`,
      ),
    );
    expect(await answers(c.client)).toEqual({ v1: 40 });

    // The CLI shows what happened, and says the client refuses it.
    const get = await config("get", "catalog");
    expect(get.stdout).toMatch(new RegExp(`^# "catalog" revision ${raw}: written outside weft config`));
    expect(get.stdout).toMatch(
      /# is invalid: .*weight: got -1.* \(clients refuse it and keep their last good version\)/,
    );
    const history = await config("history", "catalog");
    expect(history.stdout).toMatch(
      new RegExp(`rev ${raw} +- +\\(written outside weft config\\) +← current, is invalid`),
    );
    expect(history.stdout).toMatch(new RegExp(`rev ${written(good)} +\\S+ +tester@\\S+ +"all on v1"`));

    // The next good version applies; history kept the raw one and the one before it.
    const next = await config("put", "-m", "all on v2", "catalog", await file("v2.yaml", split(0, 100)));
    expect(next.code, next.stderr).toBe(0);
    await c.applied(next);
    expect(c.client.snapshot().routing?.config?.lastRejected).toBeNull();
    expect(await answers(c.client)).toEqual({ v2: 40 });
    const after = await config("history", "catalog");
    expect(after.stdout.split("\n").filter((line) => /^ +rev \d+/.test(line))).toHaveLength(3);
  });

  it("two operators racing a put on the same revision: one wins, the other is told who and exits 3, no update lost", async () => {
    const { prefix, config } = scope();
    const base = await config("put", "catalog", await file("base.yaml", split(100, 0)));
    const seen = written(base);
    const [a, b] = await Promise.all([
      config(
        "put",
        "--expect-revision",
        String(seen),
        "--by",
        "alice",
        "-m",
        "canary 10 %",
        "catalog",
        await file("a.yaml", split(90, 10)),
      ),
      config(
        "put",
        "--expect-revision",
        String(seen),
        "--by",
        "bob",
        "-m",
        "canary 50 %",
        "catalog",
        await file("b.yaml", split(50, 50)),
      ),
    ]);
    const results = [a, b].map((r) => r.code).sort();
    expect(results, `${a.stderr}${b.stderr}`).toEqual([0, 3]);
    const [winner, loser] = a.code === 0 ? [a, b] : [b, a];
    const [who, message] = a.code === 0 ? ["alice", "canary 10 %"] : ["bob", "canary 50 %"];
    expect(loser.stdout).toBe("");
    expect(loser.stderr).toMatch(
      new RegExp(
        `^weft config put: conflict: the config of "catalog" changed since revision ${seen}: it is now revision ${written(winner)}, written by ${who} at \\S+: "${message}"\\. Nothing was written; see what changed with \`weft config diff catalog .*\`, then put again`,
      ),
    );
    // History: the base version, replaced once; the key holds the winner's document.
    const history = await config("history", "catalog");
    const rows = history.stdout.split("\n").filter((line) => /^ +rev \d+/.test(line));
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(new RegExp(`rev ${written(winner)} .* ${who} +"${message}" +← current`));
    expect(rows[1]).toMatch(new RegExp(`rev ${seen} `));
    expect((await kv.rangePrefix(`${prefix}.history/`)).kvs.map((k) => k.key)).toEqual([
      `${prefix}.history/catalog/${String(seen).padStart(20, "0")}`,
    ]);

    // A stale --expect-revision is refused before anything is sent, with the same message.
    const stale = await config(
      "put",
      "--expect-revision",
      String(seen),
      "catalog",
      await file("c.yaml", split(0, 100)),
    );
    expect(stale.code).toBe(3);
    expect(stale.stderr).toContain(`changed since revision ${seen}: it is now revision ${written(winner)}`);
  });

  it("history lists the versions newest first with who and why; rollback writes the previous one again and a client applies it", async () => {
    const { config, prefix } = scope();
    const c = await catalogClient(prefix);
    const first = await config(
      "put",
      "--by",
      "alice",
      "-m",
      "all on v1",
      "catalog",
      await file("v1.yaml", split(100, 0)),
    );
    await c.applied(first);
    const second = await config(
      "put",
      "--by",
      "bob",
      "-m",
      "all on v2",
      "catalog",
      await file("v2.yaml", split(0, 100)),
    );
    await c.applied(second);
    expect(await answers(c.client)).toEqual({ v2: 40 });

    const history = await config("history", "catalog");
    expect(history.code).toBe(0);
    expect(history.stdout).toMatch(
      new RegExp(
        [
          `^history of "catalog" \\(etcd key ${prefix}catalog\\), newest first:`,
          ` +rev ${written(second)} +\\S+Z +bob +"all on v2" +← current`,
          ` +rev ${written(first)} +\\S+Z +alice +"all on v1"`,
          "$",
        ].join("\n"),
      ),
    );

    const rollback = await config("rollback", "--by", "carol", "catalog");
    expect(rollback.code, rollback.stderr).toBe(0);
    expect(rollback.stdout).toMatch(
      new RegExp(
        `revision \\d+ written: the config of revision ${written(first)} again \\(revision ${written(second)} kept in history\\)`,
      ),
    );
    await c.applied(rollback);
    expect(await answers(c.client)).toEqual({ v1: 40 });
    const after = await config("history", "catalog");
    const rows = after.stdout.split("\n").filter((line) => /^ +rev \d+/.test(line));
    expect(rows).toHaveLength(3);
    expect(rows[0]).toMatch(
      new RegExp(`rev ${written(rollback)} .* carol +"rollback to revision ${written(first)}" +← current`),
    );

    // --to picks any version; one that is current already, or unknown, is said so.
    const to = await config("rollback", "--to", String(written(second)), "catalog");
    await c.applied(to);
    expect(await answers(c.client)).toEqual({ v2: 40 });
    expect((await config("rollback", "--to", "999999", "catalog")).stderr).toMatch(
      /revision 999999 is not a version of "catalog"/,
    );
  });

  it("diff shows the removed and added lines of the canonical JSON, or no changes; exit 0 either way", async () => {
    const { config } = scope();
    const none = await config("diff", "catalog", await file("a.yaml", split(90, 10)));
    expect(none.code).toBe(0);
    expect(none.stdout).toMatch(/^--- "catalog" \(no config yet\)\n\+\+\+ .*a\.yaml\n@@ -0,0 \+1,\d+ @@\n\+\{\n/);

    const put = await config("put", "catalog", await file("a.yaml", split(90, 10)));
    const changed = parseConfigText(split(50, 50, 500), "b.yaml");
    const diff = await config("diff", "catalog", await file("b.json", JSON.stringify(changed)));
    expect(diff.code).toBe(0);
    expect(diff.stdout).toContain(`--- "catalog" revision ${written(put)}\n`);
    const changes = diff.stdout.split("\n").filter((line) => /^[-+] /.test(line));
    expect(changes).toEqual([
      '-          "weight": 90',
      '+          "weight": 50',
      '-          "weight": 10',
      '+          "weight": 50',
      '-    "totalMs": 2000',
      '+    "totalMs": 500',
    ]);
    // The same config in other words (JSON, other key order) is no change.
    const { timeout, routes } = parseConfigText(split(90, 10), "a.yaml") as Record<string, unknown>;
    const same = await config("diff", "catalog", await file("same.json", JSON.stringify({ routes, timeout })));
    expect(same.code).toBe(0);
    expect(same.stdout).toMatch(/^no changes: .*same\.json holds the same config as "catalog" revision \d+\n$/);
  });

  it("exits 2 with a clear message when etcd is unreachable, 1 on bad usage", async () => {
    const port = await refusedPort();
    const file1 = await file("a.yaml", split(90, 10));
    const run = await weft("config", "put", "--etcd", `http://127.0.0.1:${port}`, "catalog", file1);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(
      `weft config put: etcd unreachable (http://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}); nothing was written (is etcd running at http://127.0.0.1:${port}?)\n`,
    );
    expect((await weft("config", "history", "--etcd", `http://127.0.0.1:${port}`, "catalog")).code).toBe(2);

    const help = await weft("config", "put", "--help");
    expect(help).toMatchObject({ code: 0, stderr: "" });
    expect(help.stdout).toMatch(/^usage: weft config put \[options\] SERVICE FILE\n/);
    expect(help.stdout).toMatch(/--expect-revision N/);
    for (const argv of [
      ["config", "put", "--etcd", etcd.url, "catalog"],
      ["config", "put", "--etcd", etcd.url, "--bogus", "catalog", file1],
      ["config", "get", "--etcd", "127.0.0.1:2379", "catalog"],
      ["config", "get", "--etcd", etcd.url, "../passwd"],
      ["config", "get", "catalog"],
      ["config", "rollback", "--etcd", etcd.url, "--to", "last", "catalog"],
      ["config", "frobnicate"],
      ["deploy"],
    ]) {
      const bad = await weft(...argv);
      expect(bad.code, argv.join(" ")).toBe(1);
      expect(bad.stderr, argv.join(" ")).toMatch(/^weft: /);
    }
    expect((await weft("config", "get", "catalog")).stderr).toMatch(/give --etcd URL\[,URL…\] or set WEFT_ETCD/);
  });

  it("the bin runs as a process of its own (node --import tsx src/cli/weft.ts)", async () => {
    const { prefix, config } = scope();
    const path = await file("a.yaml", split(90, 10));
    const bin = (...argv: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, ["--import", "tsx", "src/cli/weft.ts", ...argv], {
          stdio: ["ignore", "pipe", "pipe"],
          env: { ...process.env, WEFT_ETCD: etcd.url },
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
        child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
        child.on("exit", (code) => resolve({ code, stdout, stderr }));
      });
    const put = await bin("config", "put", "--prefix", prefix, "catalog", path);
    expect(put, put.stderr).toMatchObject({ code: 0, stderr: "" });
    expect(put.stdout).toMatch(/^"catalog": revision \d+ written/);
    expect(JSON.parse((await config("get", "--json", "catalog")).stdout)).toEqual(parseConfigText(split(90, 10), "x"));
    expect((await bin("config", "put", "--prefix", prefix, "catalog", await file("b.yaml", split(1, -1)))).code).toBe(
      1,
    );
    expect((await readFile("src/cli/weft.ts", "utf8")).startsWith("#!/usr/bin/env node\n")).toBe(true);
  });
});

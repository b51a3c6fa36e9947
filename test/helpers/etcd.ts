/**
 * A real etcd (Debian `etcd-server`) for integration tests: free loopback ports, a temp data dir,
 * ready when `GET /version` answers. The ChildProcess is kept, so stop/kill/restart signal the
 * pid we started — never a process found by name. A missing binary fails in CI with the install
 * command; locally the suites skip, saying so (`hasEtcd`).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
// The readiness check and port picking are the example's (one copy): a test starts etcd the way the example does.
import { answers, freePorts } from "../../examples/etcd-mesh/etcd.js";

const ETCD_MISSING = "etcd is not installed: apt-get install -y etcd-server (Debian/Ubuntu)";

/** True when the `etcd` binary runs. In CI a missing binary throws instead, so the suite fails rather than skips. */
export const hasEtcd: boolean = (() => {
  const found = spawnSync("etcd", ["--version"], { stdio: "ignore" }).status === 0;
  if (!found && process.env.CI !== undefined && process.env.CI !== "") throw new Error(ETCD_MISSING);
  if (!found) console.warn(`skipping etcd tests: ${ETCD_MISSING}`);
  return found;
})();

export interface TestEtcd {
  /** The client URL, e.g. `http://127.0.0.1:40123`. */
  readonly url: string;
  /** The pid of the running etcd (changes on restart). */
  readonly pid: number;
  /** SIGTERM, and wait for the exit. */
  stop(): Promise<void>;
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<void>;
  /** Starts etcd again on the same ports and data dir (stops it first if running); resolves when ready. */
  restart(): Promise<void>;
  /** Stops etcd and removes its data dir. */
  close(): Promise<void>;
}

const running = new Set<ChildProcess>();
// A test run that dies must not leave an etcd behind: SIGKILL our own children on exit.
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export async function startEtcd(): Promise<TestEtcd> {
  if (!hasEtcd) throw new Error(ETCD_MISSING);
  const [clientPort, peerPort] = await freePorts(2);
  const dir = await mkdtemp(join(tmpdir(), "weft-etcd-"));
  const url = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    "--name",
    "weft",
    "--data-dir",
    join(dir, "data"),
    "--listen-client-urls",
    url,
    "--advertise-client-urls",
    url,
    "--listen-peer-urls",
    peer,
    "--initial-advertise-peer-urls",
    peer,
    "--initial-cluster",
    `weft=${peer}`,
    // A single member elects itself after one election timeout: keep it short so starts are quick.
    "--heartbeat-interval",
    "25",
    "--election-timeout",
    "250",
  ];
  let child: ChildProcess | undefined;
  let log = "";

  const launch = async (): Promise<void> => {
    log = "";
    const started = spawn("etcd", args, { stdio: ["ignore", "ignore", "pipe"] });
    child = started;
    running.add(started);
    started.once("exit", () => running.delete(started));
    started.stderr?.setEncoding("utf8");
    started.stderr?.on("data", (chunk: string) => {
      log = (log + chunk).slice(-4000);
    });
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (started.exitCode !== null || started.signalCode !== null)
        throw new Error(`etcd exited early (${started.exitCode ?? started.signalCode}):\n${log}`);
      if (await answers(`${url}/version`)) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await signal("SIGKILL");
    throw new Error(`etcd did not answer ${url}/version within 15 s:\n${log}`);
  };

  const signal = async (name: NodeJS.Signals): Promise<void> => {
    const current = child;
    if (current === undefined || current.exitCode !== null || current.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => current.once("exit", () => resolve()));
    current.kill(name);
    await exited;
  };

  await launch();
  return {
    url,
    get pid() {
      return child?.pid ?? -1;
    },
    stop: () => signal("SIGTERM"),
    kill: () => signal("SIGKILL"),
    restart: async () => {
      await signal("SIGTERM");
      await launch();
    },
    close: async () => {
      await signal("SIGTERM");
      await rm(dir, { recursive: true, force: true });
    },
  };
}

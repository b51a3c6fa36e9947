/**
 * A throwaway single-member etcd for the example: free loopback ports, a temp data dir, ready when
 * `GET /version` answers. A small copy of the test helper's start logic (test/helpers/etcd.ts)
 * rather than an import of it: an example is read as a recipe and should not reach into the test
 * tree, and the helper's CI rules (throw at import when the binary is missing) are not an
 * example's business.
 *
 * etcd is stopped by the pid this file spawned — never a process found by name — and its data dir
 * removed: on `close()` (SIGTERM, SIGKILL after 2 s), and synchronously from `killNow()` for exit
 * and signal handlers. (Only a SIGKILL of the example itself, which runs no handler, leaves etcd
 * running: stop it by the pid printed at start.)
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { get } from "node:http";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The binary: `ETCD_BIN`, else `etcd` on the PATH (Debian's `etcd-server` puts it in /usr/bin). */
const ETCD_BIN = process.env.ETCD_BIN ?? "etcd";
export const ETCD_INSTALL = "apt-get install -y etcd-server";

export interface LocalEtcd {
  readonly url: string;
  readonly pid: number;
  readonly version: string;
  readonly dataDir: string;
  /** SIGTERM (SIGKILL after 2 s), wait for the exit, remove the data dir. Idempotent. */
  close(): Promise<void>;
  /** SIGKILL and remove the data dir synchronously: for `process.on("exit")`. */
  killNow(): void;
}

/** The version line of the binary, or undefined when it does not run. */
export function etcdVersion(): string | undefined {
  const run = spawnSync(ETCD_BIN, ["--version"], { encoding: "utf8" });
  return run.status === 0 ? (/etcd Version: (\S+)/.exec(run.stdout)?.[1] ?? "?") : undefined;
}

export async function startEtcd(): Promise<LocalEtcd> {
  const version = etcdVersion();
  if (version === undefined) throw new Error(`etcd is not installed (${ETCD_BIN}): ${ETCD_INSTALL}`);
  const [clientPort, peerPort] = await freePorts(2);
  const dataDir = await mkdtemp(join(tmpdir(), "weft-etcd-mesh-"));
  const url = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const child: ChildProcess = spawn(
    ETCD_BIN,
    [
      "--name",
      "weft-example",
      "--data-dir",
      join(dataDir, "data"),
      "--listen-client-urls",
      url,
      "--advertise-client-urls",
      url,
      "--listen-peer-urls",
      peer,
      "--initial-advertise-peer-urls",
      peer,
      "--initial-cluster",
      `weft-example=${peer}`,
      // One member elects itself after one election timeout: short, so the example starts fast.
      "--heartbeat-interval",
      "25",
      "--election-timeout",
      "250",
      // A process group of its own: a Ctrl-C in the terminal reaches only the example, which stops
      // etcd last, after the instances have deregistered.
    ],
    { stdio: ["ignore", "ignore", "pipe"], detached: true },
  );
  let log = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => void (log = (log + chunk).slice(-4000)));
  const running = (): boolean => child.exitCode === null && child.signalCode === null;

  const killNow = (): void => {
    if (running()) child.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  };
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      if (running()) {
        const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
        child.kill("SIGTERM");
        const force = setTimeout(() => child.kill("SIGKILL"), 2000);
        await exited;
        clearTimeout(force);
      }
      await rm(dataDir, { recursive: true, force: true });
    })());

  const deadline = Date.now() + 15_000;
  while (!(await answers(`${url}/version`))) {
    if (!running() || Date.now() > deadline) {
      await close();
      throw new Error(
        `etcd did not start on ${url} (${child.exitCode ?? child.signalCode ?? "no answer in 15 s"}):\n${log}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { url, pid: child.pid as number, version, dataDir, close, killNow };
}

/** One GET on a fresh connection (no pooled socket outlives the check). */
export function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get(url, { agent: false, timeout: 1000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode === 200));
      res.on("error", () => resolve(false));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
  });
}

/** Ports free right now, all held at once so they differ. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer();
          server.once("error", reject);
          server.listen(0, "127.0.0.1", () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

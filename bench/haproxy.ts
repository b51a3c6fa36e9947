/**
 * HAProxy on loopback, standing in for the sidecar hop that a proxy mesh (Istio, Linkerd) puts
 * on every call and that weft removes. Started as FACTS.md says it runs here:
 * `haproxy -f CFG -D -p PIDFILE`, `mode http`, `option http-keep-alive` (Debian `haproxy` 2.6).
 *
 * The config and pidfile live in a fresh temp directory. HAProxy is stopped by the pid in its
 * pidfile (SIGTERM, then SIGKILL if it lingers) — never by name — and exit and SIGINT/SIGTERM
 * hooks stop it too if the bench dies half-way, so no daemon is left behind.
 */
import { execFile } from "node:child_process";
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { sleep } from "./lib.js";

export const HAPROXY_INSTALL = "apt-get install -y haproxy";

export interface Sidecar {
  readonly port: number;
  readonly version: string;
  stop(): Promise<void>;
}

/**
 * The haproxy binary: `HAPROXY_BIN` when set (a path; anything not executable, e.g. `none`, skips
 * the row), else the first on PATH (Debian installs it in /usr/sbin, which is searched too), or null.
 */
export function findHaproxy(): string | null {
  const explicit = process.env.HAPROXY_BIN;
  const candidates =
    explicit !== undefined
      ? [explicit]
      : [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/local/sbin"]
          .filter((d) => d !== "")
          .map((d) => join(d, "haproxy"));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

function run(file: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 10_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(" ")} failed: ${error.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`haproxy did not listen on 127.0.0.1:${port} within ${ms} ms`);
    await sleep(20);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts HAProxy in front of `127.0.0.1:upstreamPort`; resolves once it accepts connections. */
export async function startHaproxy(binary: string, upstreamPort: number): Promise<Sidecar> {
  const dir = mkdtempSync(join(tmpdir(), "weft-bench-haproxy-"));
  const cfg = join(dir, "haproxy.cfg");
  const pidfile = join(dir, "haproxy.pid");
  const port = await freePort();
  writeFileSync(
    cfg,
    [
      "global",
      "  maxconn 4096",
      "defaults",
      "  mode http",
      "  option http-keep-alive",
      "  timeout connect 5s",
      "  timeout client 60s",
      "  timeout server 60s",
      "  timeout http-keep-alive 60s",
      "frontend sidecar",
      `  bind 127.0.0.1:${port}`,
      "  default_backend upstream",
      "backend upstream",
      `  server s1 127.0.0.1:${upstreamPort} maxconn 1024`,
      "",
    ].join("\n"),
  );
  const version = (await run(binary, ["-v"])).stdout.split("\n")[0]?.replace(/ - https?:.*$/, "") ?? "haproxy";
  let pids: number[] = [];
  const stopNow = (): void => {
    for (const pid of pids) if (alive(pid)) process.kill(pid, "SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  };
  // Ctrl-C or a kill mid-run: stop the daemon too (the default handlers would skip "exit" hooks).
  const onSignal = (signal: NodeJS.Signals): void => {
    stopNow();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  const unhook = (): void => {
    process.removeListener("exit", stopNow);
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
  };
  process.once("exit", stopNow);
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    await run(binary, ["-f", cfg, "-D", "-p", pidfile]);
    pids = readFileSync(pidfile, "utf8").split(/\s+/).filter(Boolean).map(Number);
    if (pids.length === 0 || pids.some((p) => !Number.isInteger(p) || p <= 0))
      throw new Error(`haproxy wrote no usable pid to ${pidfile}`);
    await waitForPort(port, 5_000);
  } catch (error) {
    unhook();
    stopNow();
    throw error;
  }
  return {
    port,
    version,
    async stop() {
      for (const pid of pids) if (alive(pid)) process.kill(pid, "SIGTERM");
      const until = Date.now() + 2_000;
      while (pids.some(alive) && Date.now() < until) await sleep(20);
      unhook();
      stopNow();
    },
  };
}

/**
 * A real dnsmasq on a loopback port for DNS discovery tests, with records from temp files that a
 * test changes while it runs. What works, measured with dnsmasq 2.90 (Debian) on this machine:
 *
 * - A/AAAA records come from an `--addn-hosts` file; SIGHUP re-reads it and clears the cache.
 *   `setHosts` rewrites the file, sends SIGHUP and waits for dnsmasq's "read FILE" log line.
 * - SRV records are `srv-host=` lines in a `--conf-file`. SIGHUP re-reads neither `--srv-host`
 *   flags nor a conf file's `srv-host` lines (checked: the old record keeps answering), so
 *   `setSrv` rewrites the conf file and restarts dnsmasq on the same port.
 * - `--no-daemon` keeps dnsmasq in the foreground as the user that started it (it does not drop
 *   to `nobody` here): it runs as root and as an unprivileged user on a high port; no `--user`.
 * - `--conf-file` also keeps /etc/dnsmasq.conf out; `--pid-file` with no value writes no pid
 *   file; `--local=/#/` answers unknown names with NXDOMAIN (ENOTFOUND) instead of REFUSED.
 *
 * The child is stopped by its own pid (the ChildProcess), never by name, also when the test
 * process exits.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import dgram from "node:dgram";
import { promises as dnsPromises } from "node:dns";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The command that installs dnsmasq; in every "missing binary" message. */
export const DNSMASQ_INSTALL = "apt-get install -y dnsmasq";

/** The dnsmasq binary (PATH, then /usr/sbin — not on a non-root PATH), or undefined. */
export const dnsmasqBinary: string | undefined = ["dnsmasq", "/usr/sbin/dnsmasq"].find(
  (bin) => spawnSync(bin, ["--version"]).status === 0,
);

/** Whether dnsmasq runs here: `describe.skipIf(!hasDnsmasq && !process.env.CI)` (CI must fail, not skip). */
export const hasDnsmasq = dnsmasqBinary !== undefined;

export interface DnsmasqOptions {
  /** Hosts-file content, e.g. `"127.0.0.2 a.test\n127.0.0.3 a.test\n"`. */
  readonly hosts?: string;
  /** `--srv-host` values, e.g. `"_http._tcp.s.test,r1.test,8081,0,10"` (name,target,port,priority,weight). */
  readonly srv?: readonly string[];
  /** TTL of every local answer, seconds. Default 1. */
  readonly ttl?: number;
}

export interface Dnsmasq {
  /** For `dnsDiscovery({ servers: [server] })`: `"127.0.0.1:PORT"`. */
  readonly server: string;
  readonly port: number;
  /** Pid of the running dnsmasq (changes on restart). */
  readonly pid: number | undefined;
  /** Rewrites the hosts file and reloads it (SIGHUP); resolves once dnsmasq has read it. */
  setHosts(content: string): Promise<void>;
  /** Replaces the SRV records: rewrites the conf file and restarts dnsmasq on the same port. */
  setSrv(records: readonly string[]): Promise<void>;
  /** SIGKILLs dnsmasq; the port stays this instance's for `restart()`. */
  kill(): Promise<void>;
  /** Starts dnsmasq again on the same port and files; resolves once it answers. */
  restart(): Promise<void>;
  /** Everything dnsmasq logged. */
  log(): string;
  close(): Promise<void>;
}

/** Starts dnsmasq on 127.0.0.1 and a free port; resolves once it answers queries. */
export async function startDnsmasq(options: DnsmasqOptions = {}): Promise<Dnsmasq> {
  const binary = dnsmasqBinary;
  if (binary === undefined) throw new Error(`dnsmasq is not installed; install it with: ${DNSMASQ_INSTALL}`);
  const dir = await mkdtemp(join(tmpdir(), "weft-dnsmasq-"));
  const hostsFile = join(dir, "hosts");
  const confFile = join(dir, "dnsmasq.conf");
  await writeFile(hostsFile, options.hosts ?? "");
  await writeFile(confFile, srvConf(options.srv ?? []));
  const ttl = options.ttl ?? 1;
  let output = "";
  let child: ChildProcess | undefined;
  const onExit = (): void => void child?.kill("SIGKILL");
  process.once("exit", onExit);

  const launch = async (port: number): Promise<void> => {
    const args = [
      "--no-daemon",
      `--port=${port}`,
      "--listen-address=127.0.0.1",
      "--bind-interfaces",
      "--no-resolv",
      "--no-hosts",
      "--local=/#/",
      "--pid-file",
      `--conf-file=${confFile}`,
      `--addn-hosts=${hostsFile}`,
      `--local-ttl=${ttl}`,
    ];
    const started = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
    child = started;
    const collect = (chunk: Buffer): void => void (output += chunk.toString("utf8"));
    started.stdout?.on("data", collect);
    started.stderr?.on("data", collect);
    await waitAnswering(started, `127.0.0.1:${port}`, () => output);
  };
  const stop = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => running.once("exit", () => resolve()));
    running.kill("SIGKILL");
    await exited;
  };

  // A UDP port free now may have its TCP twin taken (dnsmasq binds both): try a few ports.
  let port = 0;
  for (let attempt = 1; ; attempt++) {
    port = await freeUdpPort();
    try {
      await launch(port);
      break;
    } catch (error) {
      await stop();
      if (attempt >= 5 || !/in use/i.test(output)) {
        process.removeListener("exit", onExit);
        await rm(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }

  const reads = (): number => output.split(`read ${hostsFile}`).length - 1;
  return {
    server: `127.0.0.1:${port}`,
    port,
    get pid() {
      return child?.pid;
    },
    async setHosts(content) {
      const before = reads();
      await writeFile(hostsFile, content);
      if (child === undefined) return; // killed: the next restart reads the file
      child.kill("SIGHUP");
      await until(() => reads() > before, 5000, `dnsmasq did not re-read ${hostsFile} after SIGHUP`);
    },
    async setSrv(records) {
      await writeFile(confFile, srvConf(records));
      await stop();
      await launch(port);
    },
    kill: stop,
    async restart() {
      await stop();
      await launch(port);
    },
    log: () => output,
    async close() {
      await stop();
      process.removeListener("exit", onExit);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function srvConf(records: readonly string[]): string {
  return records.map((r) => `srv-host=${r}\n`).join("");
}

/** A UDP port nobody holds right now: bind 127.0.0.1:0, read it, close. */
async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(0, "127.0.0.1", () => resolve());
  });
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** Polls a query every 50 ms (up to 10 s) until the server answers — even NXDOMAIN is an answer. */
async function waitAnswering(child: ChildProcess, server: string, output: () => string): Promise<void> {
  const resolver = new dnsPromises.Resolver({ timeout: 200, tries: 1 });
  resolver.setServers([server]);
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `dnsmasq exited (${child.exitCode ?? child.signalCode}) before answering on ${server}:\n${output()}`,
      );
    }
    try {
      await resolver.resolve4("ready.weft-dnsmasq.invalid");
      return;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === "ENOTFOUND" || code === "ENODATA") return;
    }
    if (Date.now() > deadline) throw new Error(`dnsmasq did not answer on ${server} within 10 s:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function until(predicate: () => boolean, timeoutMs: number, message: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(message);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

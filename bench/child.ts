/**
 * Starting and stopping the bench's upstream servers in child processes, so that the servers'
 * work does not share an event loop with the client being measured (on a 2-core machine client
 * and servers then each get a core, as separate services would).
 *
 * A child prints `PORT <n>` or `PORTS <a>,<b>,…` on stdout once it listens on 127.0.0.1. It is
 * stopped by its pid — SIGTERM, then SIGKILL after 2 s — and, because its stdin is a pipe from
 * this process, it also exits when this process ends however it ends; a last-chance `exit` hook
 * SIGKILLs it by pid too. Nothing the bench starts can outlive it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import { fileURLToPath } from "node:url";

export interface ChildServer {
  /** The ports the child listens on, on 127.0.0.1, in the order it printed them. */
  readonly ports: readonly number[];
  readonly pid: number | undefined;
  /** SIGTERM by pid, SIGKILL after 2 s if it has not exited; resolves once it has. */
  stop(): Promise<void>;
}

/** Runs `script` (a bench/*.ts file next to this one) under tsx with `args`; resolves once it listens. */
export async function startChild(script: string, args: readonly string[] = []): Promise<ChildServer> {
  const path = fileURLToPath(new URL(script, import.meta.url));
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", path, ...args], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const pid = child.pid;
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  const kill = (): void => {
    if (pid !== undefined && alive()) process.kill(pid, "SIGKILL");
  };
  process.once("exit", kill);
  let ports: number[];
  try {
    ports = await new Promise<number[]>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error(`${script} did not print its port within 15 s`)), 15_000);
      child.stdout!.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        const m = /PORTS? ([\d,]+)\n/.exec(out);
        if (m !== null) {
          clearTimeout(timer);
          resolve((m[1] as string).split(",").map(Number));
        }
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`${script} exited early (code ${code})`));
      });
    });
  } catch (error) {
    kill();
    process.removeListener("exit", kill);
    throw error;
  }
  const stop = async (): Promise<void> => {
    const exited = new Promise<void>((resolve) => (alive() ? child.once("exit", () => resolve()) : resolve()));
    if (pid !== undefined && alive()) process.kill(pid, "SIGTERM");
    child.stdin?.end();
    const timer = setTimeout(kill, 2_000);
    await exited;
    clearTimeout(timer);
    process.removeListener("exit", kill);
  };
  return { ports, pid, stop };
}

/** What `replicas.ts` counted so far, per port (cumulative since it started). */
export interface ReplicaStats {
  /** Requests that arrived (the stats requests themselves not counted). */
  readonly requests: readonly number[];
  /** Of those, answered slowly (tail mode: a slow draw; log-normal mode: while the replica's factor was above 1). */
  readonly slow: readonly number[];
  /** Of those, whose connection closed before the answer was written (a cancelled hedge, say). */
  readonly aborted: readonly number[];
  /** TCP connections accepted (the stats requests' own included). */
  readonly connections: readonly number[];
}

/** GETs `path` from a child on a fresh connection (closed after) and parses its JSON body. */
export function getJson<T>(port: number, path: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => {
        try {
          resolve(JSON.parse(body) as T);
        } catch (error) {
          reject(error);
        }
      });
    });
    req.on("error", reject);
    req.setTimeout(5_000, () => req.destroy(new Error(`GET ${path} from the child timed out`)));
  });
}

/** Reads `GET /__stats` from a replicas.ts child. */
export function readStats(port: number): Promise<ReplicaStats> {
  return getJson<ReplicaStats>(port, "/__stats");
}

/**
 * Sets replica `replica`'s slow-down factor in a replicas.ts child in log-normal mode
 * (`GET /__control?replica=&factor=` on a fresh connection); resolves once the child applied it.
 */
export function setSlowdown(port: number, replica: number, factor: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: "127.0.0.1", port, path: `/__control?replica=${replica}&factor=${factor}`, agent: false },
      (res) => {
        res.resume();
        res.on("end", () =>
          res.statusCode === 200
            ? resolve()
            : reject(new Error(`replicas.ts refused /__control (status ${res.statusCode})`)),
        );
      },
    );
    req.on("error", reject);
    req.setTimeout(5_000, () => req.destroy(new Error("control request timed out")));
  });
}

/** Sum of a per-port counter. */
export function total(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/**
 * In a server child: run `stop` on SIGTERM, SIGINT or when the parent's end of stdin closes (the
 * parent died), and never outlive that by more than a moment.
 */
export function stopWithParent(stop: () => void): void {
  const once = (): void => {
    stop();
    // Whatever still holds the loop (a slow reply's timer), do not outlive the parent for long.
    setTimeout(() => process.exit(0), 500).unref();
  };
  process.on("SIGTERM", once);
  process.on("SIGINT", once);
  process.stdin.on("end", once);
  process.stdin.on("close", once);
  process.stdin.resume();
}

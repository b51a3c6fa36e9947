/**
 * Starting and stopping the replica processes. Every child is tracked by the pid we spawned, and
 * stopped by that pid only: on the normal path (`stop()`), on an error (the caller's `finally`)
 * and on SIGINT/SIGTERM or process exit (`killNow()`, synchronous so it works in an exit handler).
 * The set exists before any child does, so a signal that arrives mid-start still finds them all.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Behaviour } from "./replica.js";

export interface Replica {
  readonly behaviour: Behaviour;
  readonly url: string;
  /** The child's process id: a test freezes a replica with `process.kill(pid, "SIGSTOP")`. */
  readonly pid: number;
}

const START_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 2_000;
const REPLICA_PATH = fileURLToPath(new URL("./replica.ts", import.meta.url));
// Resolved from this file, not the working directory, so the demo runs from anywhere.
const TSX_LOADER = import.meta.resolve("tsx");

export class ReplicaSet {
  readonly #children: ChildProcess[] = [];

  /** Starts one child per behaviour, in parallel; resolves once all of them listen. */
  async start(behaviours: readonly Behaviour[]): Promise<Replica[]> {
    return Promise.all(
      behaviours.map(async (behaviour) => {
        const child = spawn(process.execPath, ["--import", TSX_LOADER, REPLICA_PATH, behaviour], {
          stdio: ["ignore", "ignore", "inherit", "ipc"],
        });
        this.#children.push(child);
        const port = await waitForPort(child, behaviour);
        // A child that emitted a port was spawned, so it has a pid.
        return { behaviour, url: `http://127.0.0.1:${port}`, pid: child.pid as number };
      }),
    );
  }

  /** Asks every child to stop (SIGTERM), waits for each to exit, SIGKILLs stragglers. */
  async stop(): Promise<void> {
    await Promise.all(this.#children.map(stopChild));
  }

  /** SIGKILLs every child still running, without waiting: for signal and exit handlers. */
  killNow(): void {
    for (const child of this.#children) if (isRunning(child)) child.kill("SIGKILL");
  }
}

function waitForPort(child: ChildProcess, behaviour: Behaviour): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => fail(new Error(`replica ${behaviour} did not start within ${START_TIMEOUT_MS} ms`)),
      START_TIMEOUT_MS,
    );
    const onMessage = (message: unknown): void => {
      const port = (message as { port?: unknown } | null)?.port;
      if (typeof port !== "number") return;
      cleanup();
      resolve(port);
    };
    const onExit = (code: number | null, signal: string | null): void => {
      fail(new Error(`replica ${behaviour} exited before listening (code ${code}, signal ${signal})`));
    };
    const fail = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off("message", onMessage).off("exit", onExit).off("error", fail);
    };
    child.on("message", onMessage).once("exit", onExit).once("error", fail);
  });
}

function isRunning(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (!isRunning(child)) return Promise.resolve();
  return new Promise((resolve) => {
    // A replica handles SIGTERM by dying; SIGKILL is only for one that is wedged.
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
    // A frozen (SIGSTOPped) replica acts on SIGTERM only once it runs again.
    child.kill("SIGCONT");
  });
}

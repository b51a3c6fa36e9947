/**
 * The parent's side of the instance processes: start one (resolves once it is registered in
 * etcd), stop one gracefully (SIGTERM: it deregisters, drains, exits), crash one (SIGKILL), and
 * stop them all. Every child is tracked by the ChildProcess this file spawned and signalled by
 * that pid only — never a process found by name — on every exit path: `stopAll()` on the normal
 * path and in the caller's `finally`, `killNow()` (synchronous) from exit and signal handlers.
 * The set exists before any child does, so a signal that arrives mid-start still finds them all.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

/** What an instance tells the parent over IPC. */
export type InstanceMessage =
  | {
      readonly type: "registered";
      readonly url: string;
      readonly key: string;
      readonly startedAtMs: number;
      readonly atMs: number;
    }
  | { readonly type: "deregistering"; readonly atMs: number }
  | { readonly type: "error"; readonly message: string };

/** Wall-clock ms with sub-ms precision, comparable between processes of one machine. */
export const wallMs = (): number => performance.timeOrigin + performance.now();

export interface Instance {
  readonly name: string;
  readonly pid: number;
  readonly url: string;
  /** When it called `etcdRegistration` (wall-clock ms). */
  readonly registeringAtMs: number;
  /** When that call returned: the key is written under its lease. */
  readonly registeredAtMs: number;
  /** When it called `registration.close()` after a SIGTERM. */
  deregisteringAtMs?: number;
}

const START_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 3_000;
const INSTANCE_PATH = fileURLToPath(new URL("./instance.ts", import.meta.url));
// Resolved from this file, not the working directory, so the example runs from anywhere.
const TSX_LOADER = import.meta.resolve("tsx");

const running = (child: ChildProcess): boolean => child.exitCode === null && child.signalCode === null;

export class Instances {
  readonly #children = new Map<number, ChildProcess>();
  readonly #script: string;

  /** `script`: the instance program (default this example's `instance.ts`), speaking `InstanceMessage` over IPC. */
  constructor(script: string = INSTANCE_PATH) {
    this.#script = script;
  }

  /** Every pid started so far (for checking afterwards that none is left). */
  get pids(): number[] {
    return [...this.#children.keys()];
  }

  /** Spawns the instance program (`extra`: more arguments for it); resolves once it has registered itself under `prefix`. */
  async start(name: string, etcdUrl: string, prefix: string, ...extra: string[]): Promise<Instance> {
    const child = spawn(process.execPath, ["--import", TSX_LOADER, this.#script, name, etcdUrl, prefix, ...extra], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      // A process group of its own: a Ctrl-C in the terminal reaches only the parent, which stops
      // the instances in order (they deregister while etcd still runs).
      detached: true,
    });
    if (child.pid === undefined) throw new Error(`could not start ${name}`);
    const pid = child.pid;
    this.#children.set(pid, child);
    const instance = await new Promise<Instance>((resolve, reject) => {
      const timer = setTimeout(
        () => done(new Error(`${name} did not register within ${START_TIMEOUT_MS} ms`)),
        START_TIMEOUT_MS,
      );
      const onMessage = (message: InstanceMessage): void => {
        if (message.type === "registered")
          done(undefined, {
            name,
            pid,
            url: message.url,
            registeringAtMs: message.startedAtMs,
            registeredAtMs: message.atMs,
          });
        if (message.type === "error") done(new Error(`${name}: ${message.message}`));
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void =>
        done(new Error(`${name} exited (${code ?? signal}) before registering`));
      const done = (error: Error | undefined, value?: Instance): void => {
        clearTimeout(timer);
        child.off("message", onMessage);
        child.off("exit", onExit);
        if (error !== undefined) reject(error);
        else resolve(value as Instance);
      };
      child.on("message", onMessage);
      child.once("exit", onExit);
    });
    child.on("message", (message: InstanceMessage) => {
      if (message.type === "deregistering") instance.deregisteringAtMs = message.atMs;
    });
    return instance;
  }

  /** SIGTERM by pid (graceful: the instance deregisters, drains, exits); resolves on its exit. */
  terminate(instance: Instance): Promise<void> {
    return stopChild(this.#children.get(instance.pid));
  }

  /** SIGKILL by pid: a crash, no deregistration. Resolves on its exit. */
  kill(instance: Instance): Promise<void> {
    const child = this.#children.get(instance.pid);
    if (child === undefined || !running(child)) return Promise.resolve();
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGKILL");
    return exited;
  }

  /** Stops every child still running (SIGTERM, SIGKILL after a grace period), in parallel. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.#children.values()].map(stopChild));
  }

  /** SIGKILLs every child still running, without waiting: for exit and signal handlers. */
  killNow(): void {
    for (const child of this.#children.values()) if (running(child)) child.kill("SIGKILL");
  }
}

async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || !running(child)) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const force = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
  await exited;
  clearTimeout(force);
}

/** Replicas in child processes, stopped by the pid we started — never by name. */
import { fork, type ChildProcess } from "node:child_process";

export interface Replica {
  readonly url: string;
  readonly process: ChildProcess;
  /** SIGKILLs the child (SIGCONT first, so a frozen one dies too) and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * Forks `script` (run with tsx) and resolves once it sends `{ port }` over IPC. Other messages are
 * the caller's (`replica.process.on("message", …)`).
 */
export async function forkReplica(script: string, env: Record<string, string> = {}): Promise<Replica> {
  const child = fork(script, [], {
    execArgv: ["--import", "tsx"],
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.on("message", (m: { port?: number }) => {
      if (m.port !== undefined) resolve(m.port);
    });
    child.once("exit", (code) => reject(new Error(`replica ${script} exited early with code ${code}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    process: child,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGCONT");
      child.kill("SIGKILL");
      await exited;
    },
  };
}

/** The HTTP replica of test/fixtures/replica.ts (its behaviour set by `env`). */
export function startReplica(env: Record<string, string> = {}): Promise<Replica> {
  return forkReplica("test/fixtures/replica.ts", env);
}

/** Replicas in child processes, stopped by the pid we started — never by name. */
import { fork, type ChildProcess } from "node:child_process";

export interface Replica {
  readonly url: string;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

export async function startReplica(env: Record<string, string> = {}): Promise<Replica> {
  const child = fork("test/fixtures/replica.ts", [], {
    execArgv: ["--import", "tsx"],
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once("message", (m: { port: number }) => resolve(m.port));
    child.once("exit", (code) => reject(new Error(`replica exited early with code ${code}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    process: child,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGKILL");
      await exited;
    },
  };
}

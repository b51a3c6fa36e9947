/**
 * A TypeScript script run in a child process of its own (through tsx), the way a user runs one:
 * for the tests that a process exits by itself, and what it printed. The guard only bounds the
 * test: a script still running after it is SIGKILLed by its pid.
 */
import { spawn } from "node:child_process";

export interface ScriptRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export async function runScript(args: readonly string[], guardMs = 20_000): Promise<ScriptRun> {
  const child = spawn(process.execPath, ["--import", "tsx", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const guard = setTimeout(() => child.kill("SIGKILL"), guardMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on("exit", (c, s) => resolve([c, s])),
  );
  clearTimeout(guard);
  return { code, signal, stdout, stderr };
}

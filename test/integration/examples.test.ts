/** The examples the docs point to run and exit by themselves. */
import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";

function run(file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", file], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const guard = setTimeout(() => child.kill("SIGKILL"), 30_000);
  return new Promise((resolve) =>
    child.on("exit", (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr });
    }),
  );
}

describe("examples", () => {
  it("getting-started runs, retries a slow call as documented, and exits", async () => {
    const { code, stdout, stderr } = await run("examples/getting-started.ts");
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toMatch(/request: 200/);
    expect(stdout).toMatch(/fetch: 200/);
    // Each of the 3 attempts hits the 300 ms per-try timeout; the retries go to the other replica first.
    expect(stdout).toMatch(/slow call: WEFT_ERR_ATTEMPTS after 3 attempt\(s\), last: WEFT_ERR_ATTEMPT_TIMEOUT/);
    expect(stdout.match(/retry #\d after/g)).toHaveLength(2);
  });
});

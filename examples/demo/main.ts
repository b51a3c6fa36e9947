/**
 * `npm run demo [-- --requests N --concurrency N --dashboard]`
 *
 * Starts three replicas (healthy, slow, flaky) in child processes, sends the same workload first
 * through plain fetch and then through a weft client, and prints the two side by side. The
 * replicas are stopped on every way out: normal end, error, SIGINT/SIGTERM.
 */
import { parseArgs } from "node:util";
import { plainFetchPhase, weftPhase, type PhaseOptions } from "./phases.js";
import { ReplicaSet } from "./replicas.js";
import { header, table, verdict } from "./report.js";

const USAGE = "usage: npm run demo -- [--requests N] [--concurrency N] [--dashboard]";

function readOptions(): PhaseOptions & { dashboard: boolean } {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        requests: { type: "string", default: "2000" },
        concurrency: { type: "string", default: "32" },
        dashboard: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (error) {
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  return { requests: positiveInt("--requests", values.requests), concurrency: positiveInt("--concurrency", values.concurrency), dashboard: values.dashboard };
}

function positiveInt(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${flag} must be a positive integer, got ${JSON.stringify(text)}\n${USAGE}`);
  return value;
}

async function main(): Promise<void> {
  const options = readOptions();
  const replicaSet = new ReplicaSet();
  // Signals skip `finally`: kill the children here, by the pids we started, then leave.
  const onSignal = (signal: NodeJS.Signals): void => {
    process.stderr.write(`\n${signal}: stopping replicas\n`);
    replicaSet.killNow();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.once("SIGINT", onSignal).once("SIGTERM", onSignal);
  process.once("exit", () => replicaSet.killNow());

  console.log(header(options.requests, options.concurrency));
  if (options.dashboard) console.log("dashboard: not available yet (see issue 6)\n");
  try {
    const replicas = await replicaSet.start(["healthy", "slow", "flaky"]);
    const baseline = await plainFetchPhase(replicas, options);
    const weft = await weftPhase(replicas, options);
    console.log("\n" + table([baseline, weft]) + "\n");
    console.log(verdict(baseline, weft));
  } finally {
    await replicaSet.stop();
    process.off("SIGINT", onSignal).off("SIGTERM", onSignal);
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});

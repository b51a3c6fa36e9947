/**
 * `npm run demo [-- --requests N --concurrency N --dashboard]`
 *
 * Starts three replicas (healthy, slow, flaky) in child processes, sends the same workload first
 * through plain fetch and then through a weft client, and prints the two side by side. With
 * `--dashboard` it then keeps a mesh running over the same replicas, with the live admin dashboard,
 * until Ctrl-C. The replicas are stopped on every way out: normal end, error, SIGINT/SIGTERM.
 */
import { parseArgs } from "node:util";
import { DEMO_CLIENTS, startDashboard, type Dashboard } from "./dashboard.js";
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
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`, { cause: error });
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  return {
    requests: positiveInt("--requests", values.requests),
    concurrency: positiveInt("--concurrency", values.concurrency),
    dashboard: values.dashboard,
  };
}

function positiveInt(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`${flag} must be a positive integer, got ${JSON.stringify(text)}\n${USAGE}`);
  return value;
}

/** A graceful stop that takes longer than this gives way to SIGKILL of the replicas and exit. */
const STOP_DEADLINE_MS = 5_000;

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
  try {
    const replicas = await replicaSet.start(["healthy", "slow", "flaky"]);
    const baseline = await plainFetchPhase(replicas, options);
    const weft = await weftPhase(replicas, options);
    console.log("\n" + table([baseline, weft]) + "\n");
    console.log(verdict(baseline, weft));
    if (options.dashboard) {
      process.off("SIGINT", onSignal).off("SIGTERM", onSignal);
      await runDashboard(replicas, replicaSet, onSignal);
    }
  } finally {
    await replicaSet.stop();
    process.off("SIGINT", onSignal).off("SIGTERM", onSignal);
  }
}

/**
 * Serves the dashboard until SIGINT/SIGTERM, then stops it gracefully (load, admin server, mesh);
 * the caller's `finally` stops the replicas. A second signal, or a stop slower than
 * STOP_DEADLINE_MS, falls back to `onSignal`: SIGKILL the replicas and exit.
 */
async function runDashboard(
  replicas: Parameters<typeof startDashboard>[0],
  replicaSet: ReplicaSet,
  onSignal: (signal: NodeJS.Signals) => void,
): Promise<void> {
  // Listen before starting, so a signal during start-up is not the default (abrupt) exit.
  const stopRequested = nextSignal();
  let dashboard: Dashboard;
  try {
    dashboard = await startDashboard(replicas);
  } catch (error) {
    stopRequested.cancel();
    throw error;
  }
  console.log(`\ndashboard: ${dashboard.url}`);
  console.log(`  live mesh: ${DEMO_CLIENTS.map((c) => `${c.service} (${c.behaviours.join(" + ")})`).join(", ")}`);
  console.log(`  also ${dashboard.url}/snapshot.json and ${dashboard.url}/metrics`);
  console.log(
    `  freeze a replica to watch outlier detection eject it: kill -STOP ${replicas.map((r) => `${r.pid} (${r.behaviour})`).join(" | ")}`,
  );
  console.log("  Ctrl-C to stop");
  const signal = await stopRequested.signal;
  process.stderr.write(`\n${signal}: stopping the dashboard and the replicas\n`);
  process.once("SIGINT", onSignal).once("SIGTERM", onSignal);
  const deadline = setTimeout(() => {
    process.stderr.write(`graceful stop took over ${STOP_DEADLINE_MS} ms: killing the replicas\n`);
    replicaSet.killNow();
    process.exit(1);
  }, STOP_DEADLINE_MS).unref();
  try {
    await dashboard.stop();
  } finally {
    clearTimeout(deadline);
  }
}

/** `signal` resolves with the first SIGINT or SIGTERM, after which neither is listened for; `cancel` stops listening. */
function nextSignal(): { readonly signal: Promise<NodeJS.Signals>; cancel(): void } {
  let cancel = (): void => {};
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    const on = (received: NodeJS.Signals): void => {
      cancel();
      resolve(received);
    };
    cancel = () => {
      process.off("SIGINT", on).off("SIGTERM", on);
    };
    process.on("SIGINT", on).on("SIGTERM", on);
  });
  return { signal, cancel };
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});

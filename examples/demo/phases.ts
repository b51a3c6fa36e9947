/**
 * The two runs of the demo: the same workload through plain global `fetch` (round-robin over the
 * replica URLs, as a naive client does) and through a weft client with its defaults. Both read
 * every body to the end, so both release their connections the same way.
 */
import { createClient, staticDiscovery } from "weft";
import { Progress } from "./progress.js";
import type { Behaviour } from "./replica.js";
import type { Replica } from "./replicas.js";
import type { Column } from "./report.js";
import { runWorkload, type Send, type WorkloadOptions, type WorkloadResult } from "./workload.js";

const PATH = "/v1/items/42";

export type PhaseOptions = Omit<WorkloadOptions, "onProgress">;

export async function plainFetchPhase(replicas: readonly Replica[], options: PhaseOptions): Promise<Column> {
  const name = "plain fetch";
  const sentTo = countsByBehaviour();
  let turn = 0;
  const send: Send = async () => {
    const replica = replicas[turn++ % replicas.length] as Replica;
    sentTo[replica.behaviour]++;
    const res = await fetch(replica.url + PATH);
    await res.arrayBuffer();
    return res.status;
  };
  const result = await withProgress(name, send, options);
  return { name, result, attemptsPerRequest: 1, sentTo };
}

export async function weftPhase(replicas: readonly Replica[], options: PhaseOptions): Promise<Column> {
  const name = "weft";
  // Defaults, plus hedging: idempotent GETs still outstanding at the p95 of recent latencies get a
  // backup request to another replica, drawn from the retry budget.
  const client = createClient({
    service: "demo",
    discovery: staticDiscovery(replicas.map((r) => r.url)),
    hedge: { percentile: 95 },
  });
  try {
    const send: Send = async () => {
      const res = await client.request({ path: PATH });
      await res.arrayBuffer();
      return res.status;
    };
    const result = await withProgress(name, send, options);
    const { counters, endpoints } = client.snapshot();
    const sentTo = countsByBehaviour();
    for (const endpoint of endpoints) {
      const replica = replicas.find((r) => r.url === endpoint.url);
      if (replica !== undefined) sentTo[replica.behaviour] += endpoint.requests;
    }
    return { name, result, attemptsPerRequest: counters.calls === 0 ? 0 : counters.attempts / counters.calls, sentTo };
  } finally {
    await client.close();
  }
}

async function withProgress(name: string, send: Send, options: PhaseOptions): Promise<WorkloadResult> {
  const progress = new Progress(name, options.requests);
  try {
    return await runWorkload(send, { ...options, onProgress: (done) => progress.update(done) });
  } finally {
    progress.finish();
  }
}

function countsByBehaviour(): Record<Behaviour, number> {
  return { healthy: 0, slow: 0, flaky: 0 };
}

/**
 * The demo's live part (`npm run demo -- --dashboard`): a mesh of three clients over the demo's
 * replicas, a gentle steady load through them, and `serveAdmin` in front, so the dashboard has
 * something to show. The end-to-end Chromium test starts exactly this, so what it checks is what
 * a user sees.
 *
 * The clients differ so the page has different stories to tell:
 * - **catalog** — all three replicas, hedging at the p95 (the comparison run's client);
 * - **inventory** — healthy and slow, round-robin, with a 250 ms attempt timeout: the slow
 *   replica's 1 s answers become timeouts and are retried, and a replica that stops answering
 *   (freeze it with `kill -STOP <pid>`) fails 5 attempts in a row and is ejected by outlier
 *   detection for 30 s;
 * - **pricing** — healthy and flaky with weft's defaults: the flaky replica's 503s are retried.
 *
 * The load is an open loop at a fixed rate with a cap on calls in flight per client, so a frozen
 * replica slows nothing down and nothing piles up. Everything else is weft's defaults.
 */
import { createMesh, roundRobin, staticDiscovery, type ClientOptions, type Mesh } from "weft";
import { serveAdmin } from "weft/admin";
import type { Behaviour } from "./replica.js";
import type { Replica } from "./replicas.js";

export interface DemoClient {
  readonly service: string;
  /** The replicas it calls, by behaviour. */
  readonly behaviours: readonly Behaviour[];
  readonly path: string;
  readonly options: Omit<ClientOptions, "service" | "discovery">;
}

export const DEMO_CLIENTS: readonly DemoClient[] = [
  {
    service: "catalog",
    behaviours: ["healthy", "slow", "flaky"],
    path: "/v1/items/42",
    options: { hedge: { percentile: 95 } },
  },
  // Round-robin keeps sending a frozen replica its share (P2C peak-EWMA would steer around it after
  // one timeout and never find out more), so outlier detection is what takes it out: the thing to see.
  {
    service: "inventory",
    behaviours: ["healthy", "slow"],
    path: "/v1/stock/42",
    options: { balancer: roundRobin(), timeout: { attemptMs: 250 } },
  },
  { service: "pricing", behaviours: ["healthy", "flaky"], path: "/v1/prices/42", options: {} },
];

export interface DashboardOptions {
  /** Port of the admin server. Default 0: a free port. */
  readonly port?: number;
  /** Calls per second sent through each client. Default 20. */
  readonly requestsPerSecond?: number;
  /** Most calls in flight per client; a tick that finds the cap reached sends nothing. Default 8. */
  readonly maxInflight?: number;
}

export interface Dashboard {
  /** The dashboard page, e.g. `http://127.0.0.1:40123/admin`. */
  readonly url: string;
  readonly mesh: Mesh;
  /** Stops the load (in-flight calls are aborted), then closes the admin server and the mesh. */
  stop(): Promise<void>;
}

/**
 * Builds the demo mesh over `replicas`, starts the load and serves the dashboard.
 * @example const dashboard = await startDashboard(await replicaSet.start(["healthy", "slow", "flaky"]));
 */
export async function startDashboard(replicas: readonly Replica[], options: DashboardOptions = {}): Promise<Dashboard> {
  const { port = 0, requestsPerSecond = 20, maxInflight = 8 } = options;
  const mesh = createMesh();
  const abort = new AbortController();
  const inflight = new Set<Promise<void>>();
  let timer: NodeJS.Timeout | undefined;
  try {
    const senders = DEMO_CLIENTS.map((spec) => {
      const urls = spec.behaviours.map((behaviour) => urlOf(replicas, behaviour));
      const client = mesh.client(spec.service, { ...spec.options, discovery: staticDiscovery(urls) });
      let busy = 0;
      return (): void => {
        if (busy >= maxInflight || abort.signal.aborted) return;
        busy++;
        const call = client
          .request({ path: spec.path, signal: abort.signal })
          .then((res) => res.arrayBuffer())
          // Failures are what the dashboard is for: they show there, not here.
          .then(
            () => undefined,
            () => undefined,
          )
          .finally(() => {
            busy--;
            inflight.delete(call);
          });
        inflight.add(call);
      };
    });
    timer = setInterval(() => senders.forEach((send) => send()), 1000 / requestsPerSecond);
    const admin = await serveAdmin(mesh, { port });
    let stopping: Promise<void> | undefined;
    return {
      url: admin.url,
      mesh,
      stop() {
        stopping ??= (async () => {
          clearInterval(timer);
          abort.abort();
          await Promise.allSettled([...inflight]);
          await admin.close();
          await mesh.close();
        })();
        return stopping;
      },
    };
  } catch (error) {
    clearInterval(timer);
    abort.abort();
    await mesh.close();
    throw error;
  }
}

function urlOf(replicas: readonly Replica[], behaviour: Behaviour): string {
  const replica = replicas.find((r) => r.behaviour === behaviour);
  if (replica === undefined)
    throw new Error(`startDashboard: no "${behaviour}" replica among ${replicas.map((r) => r.behaviour).join(", ")}`);
  return replica.url;
}

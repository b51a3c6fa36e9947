/**
 * `server.drain()`: a graceful stop that costs the callers nothing.
 *
 * Under load (real etcd, real processes): three instances of a service (test/fixtures/
 * drain-instance.ts) register in etcd; a weft client discovering them through etcd sends GETs and
 * POSTs (no idempotency key) at a steady rate; one instance is sent SIGTERM by its pid mid-load.
 * No call may fail, the drained instance must answer /readyz 503 while it drains, its etcd key must
 * be gone before it stops accepting connections, what it answers while draining must say
 * `Connection: close`, every request it had in flight must finish, and it must exit 0 by itself.
 *
 * In process (no etcd): the order of the phases, the grace cut, the single drain, and the probes
 * while draining.
 */
import { fork, type ChildProcess } from "node:child_process";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { Agent, request } from "undici";
import { describe, expect, it } from "vitest";
import { createClient, etcdDiscovery } from "weft";
import { inbound, type DrainEvent } from "weft/server";
import { EtcdClient } from "../../src/etcd/client.js";
import type { InstanceMessage } from "../fixtures/drain-instance.js";
import { hasEtcd, startEtcd } from "../helpers/etcd.js";
import { defer, scoped } from "../helpers/scope.js";
import { until } from "../helpers/until.js";

/** An instance process and everything it has said over IPC. */
interface Instance {
  readonly child: ChildProcess;
  readonly url: string;
  readonly port: number;
  readonly key: string;
  readonly messages: InstanceMessage[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function startInstance(env: Record<string, string>): Promise<Instance> {
  const child = fork("test/fixtures/drain-instance.ts", [], {
    execArgv: ["--import", "tsx"],
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  defer(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGKILL");
    await exited;
  });
  const messages: InstanceMessage[] = [];
  child.on("message", (m: InstanceMessage) => messages.push(m));
  const ready = await new Promise<Extract<InstanceMessage, { type: "ready" }>>((resolve, reject) => {
    const onMessage = (m: InstanceMessage): void => {
      if (m.type === "ready") resolve(m);
    };
    child.on("message", onMessage);
    void exited.then(({ code, signal }) =>
      reject(new Error(`a drain instance exited before it was ready (${code ?? signal})`)),
    );
  });
  return { child, url: ready.url, port: ready.port, key: ready.key, messages, exited };
}

/** Asks an instance how many requests it has in flight. */
function inflightOf(instance: Instance): Promise<number> {
  return new Promise((resolve) => {
    const onMessage = (m: InstanceMessage): void => {
      if (m.type !== "inflight") return;
      instance.child.off("message", onMessage);
      resolve(m.inflight);
    };
    instance.child.on("message", onMessage);
    instance.child.send({ type: "inflight" });
  });
}

/** The status of a GET on a fresh connection (closed after), or undefined when none could be had. */
function statusOf(url: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode));
    });
    req.on("error", () => resolve(undefined));
    req.setTimeout(2000, () => req.destroy());
  });
}

/** True when a TCP connect to `port` is refused (nobody listens any more). */
function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code === "ECONNREFUSED"));
  });
}

interface CallRecord {
  readonly method: string;
  readonly sentAt: number;
  status?: number;
  error?: unknown;
  instance?: string;
  instanceState?: string;
  connection?: string;
}

const RATE_PER_SECOND = 200;
const LOAD_MS = 3000;
const SIGTERM_AT_MS = 1000;
const SLOW_SHARE = 0.05;
const SLOW_MS = 300;
const POST_SHARE = 0.2;
const DELAY_MS = 200;
const GRACE_MS = 3000;

describe.skipIf(!hasEtcd)("drain under load: 3 instances in etcd, one SIGTERMed mid-load", () => {
  it("fails no call: readiness 503, key revoked before the listener closes, Connection: close while draining, nothing cut, exit 0", async () => {
    const etcd = scoped(await startEtcd());
    const kv = scoped(new EtcdClient({ hosts: [etcd.url] }));
    const prefix = `/weft-drain/${process.pid}/`;
    const env = {
      ETCD_HOSTS: etcd.url,
      ETCD_PREFIX: prefix,
      DRAIN_DELAY_MS: String(DELAY_MS),
      DRAIN_GRACE_MS: String(GRACE_MS),
    };
    const instances = await Promise.all([startInstance(env), startInstance(env), startInstance(env)]);
    const doomed = instances[0];

    const client = scoped(
      createClient({ service: "drain-test", discovery: etcdDiscovery({ hosts: [etcd.url], prefix }) }),
    );
    const failedAttempts: { endpoint: string; outcome: string; status: number | undefined; error: string }[] = [];
    client.events.onAttemptEnd((e) => {
      if (e.outcome !== "success")
        failedAttempts.push({
          endpoint: e.endpoint,
          outcome: e.outcome,
          status: e.status,
          error: e.error instanceof Error ? ((e.error as { code?: string }).code ?? String(e.error)) : "",
        });
    });
    let doomedDroppedAt: number | undefined;
    client.events.onEndpointsChanged((e) => {
      if (e.removed.includes(doomed.url)) doomedDroppedAt ??= Date.now();
    });
    await until(() => client.snapshot().endpoints.length === 3, "the client to discover the 3 instances", 10_000);
    expect(await statusOf(`${doomed.url}/readyz`)).toBe(200);

    // The load: an open loop at a steady rate, each call recorded with who answered it and how.
    const calls: CallRecord[] = [];
    const pending: Promise<void>[] = [];
    const fire = (): void => {
      const post = Math.random() < POST_SHARE;
      const ms = Math.random() < SLOW_SHARE ? SLOW_MS : 2 + Math.floor(Math.random() * 4);
      const record: CallRecord = { method: post ? "POST" : "GET", sentAt: Date.now() };
      calls.push(record);
      const call = post
        ? client.request({ method: "POST", path: `/work?ms=${ms}`, body: "x".repeat(256) })
        : client.request({ path: `/work?ms=${ms}` });
      pending.push(
        call.then(
          async (res) => {
            record.status = res.status;
            record.instance = String(res.headers["x-instance"]);
            record.instanceState = String(res.headers["x-instance-state"]);
            record.connection = String(res.headers.connection);
            await res.text();
          },
          (error: unknown) => {
            record.error = error;
          },
        ),
      );
    };
    const loadStart = performance.now();
    const load = (async () => {
      let sent = 0;
      while (performance.now() - loadStart < LOAD_MS) {
        const due = Math.floor(((performance.now() - loadStart) * RATE_PER_SECOND) / 1000);
        while (sent < due) {
          fire();
          sent++;
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();

    await until(() => performance.now() - loadStart >= SIGTERM_AT_MS, "the load to run for a while", 5000, 5);
    // Three requests sent straight to the doomed instance (a raw undici client) that take longer
    // than the drain delay: in flight when the drain starts, and still when the listener closes.
    const raw = new Agent({ connections: 8 });
    defer(() => raw.close());
    const direct = [0, 1, 2].map(() =>
      request(`${doomed.url}/direct?ms=400`, { dispatcher: raw }).then(async (res) => ({
        status: res.statusCode,
        connection: String(res.headers.connection),
        state: String(res.headers["x-instance-state"]),
        body: await res.body.text(),
      })),
    );
    await until(
      async () => (await inflightOf(doomed)) >= 3,
      "the direct requests to be in flight at the doomed instance",
      5000,
    );

    const sigtermAt = Date.now();
    process.kill(doomed.child.pid!, "SIGTERM");

    // Outside view, from SIGTERM on: when the key is first seen gone, when a connect is first refused.
    let keyGoneAt: number | undefined;
    let refusedAt: number | undefined;
    let keyGoneWhenRefused = false;
    const probes = (async () => {
      while (refusedAt === undefined && Date.now() - sigtermAt < 10_000) {
        const listed = (await kv.rangePrefix(prefix)).kvs.some((k) => k.key === doomed.key);
        if (!listed) keyGoneAt ??= Date.now();
        if (await refuses(doomed.port)) {
          refusedAt = Date.now();
          keyGoneWhenRefused = keyGoneAt !== undefined;
        }
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();
    // Readiness fails while it drains (polled: the first answers come during the 200 ms delay).
    await until(
      async () => (await statusOf(`${doomed.url}/readyz`)) === 503,
      "the draining instance's /readyz to answer 503",
      2000,
      5,
    );

    const exit = await doomed.exited;
    await probes;
    await load;
    await Promise.all(pending);
    const directResults = await Promise.all(direct);

    const drained = doomed.messages.find(
      (m): m is Extract<InstanceMessage, { type: "drained" }> => m.type === "drained",
    );
    const phases = doomed.messages.filter((m): m is Extract<InstanceMessage, { type: "phase" }> => m.type === "phase");
    const revoked = doomed.messages.find(
      (m): m is Extract<InstanceMessage, { type: "revoked" }> => m.type === "revoked",
    );
    const failed = calls.filter((c) => c.error !== undefined || c.status !== 200);
    const fromDoomedDraining = calls.filter((c) => c.instance === doomed.url && c.instanceState !== "serving");
    const summary = {
      calls: calls.length,
      posts: calls.filter((c) => c.method === "POST").length,
      failed: failed.map((c) => ({ method: c.method, status: c.status, error: String(c.error) })),
      failedAttempts,
      answeredByDoomedWhileDraining: fromDoomedDraining.length,
      drained,
      phases: phases.map((p) => ({ phase: p.phase, msAfterSigterm: p.at - sigtermAt, inflight: p.inflight })),
      revokedMsAfterSigterm: revoked === undefined ? undefined : revoked.at - sigtermAt,
      keyGoneMsAfterSigterm: keyGoneAt === undefined ? undefined : keyGoneAt - sigtermAt,
      clientDroppedMsAfterSigterm: doomedDroppedAt === undefined ? undefined : doomedDroppedAt - sigtermAt,
      refusedMsAfterSigterm: refusedAt === undefined ? undefined : refusedAt - sigtermAt,
    };
    console.log(`drain under load: ${JSON.stringify(summary)}`);

    // Zero failed calls, GETs and POSTs alike; and the callers saw the drain as nothing at all.
    expect(calls.length).toBeGreaterThanOrEqual(RATE_PER_SECOND * (LOAD_MS / 1000) * 0.9);
    expect(summary.failed).toEqual([]);
    expect(directResults).toEqual(
      [0, 1, 2].map(() => ({ status: 200, connection: "close", state: "draining", body: "ok" })),
    );
    // The drained instance stopped accepting only after its key was gone (seen from outside, and
    // from inside: the revoke resolved before the "closing" phase).
    expect(keyGoneAt).toBeDefined();
    expect(refusedAt).toBeDefined();
    expect(keyGoneWhenRefused).toBe(true);
    expect(keyGoneAt!).toBeLessThanOrEqual(refusedAt!);
    expect(phases.map((p) => p.phase)).toEqual(["draining", "closing", "closed"]);
    expect(revoked).toBeDefined();
    expect(revoked!.at).toBeLessThanOrEqual(phases[1]!.at);
    // What it answered while draining said Connection: close (seen by the callers, and counted by the instance).
    for (const c of fromDoomedDraining) expect(c.connection).toBe("close");
    expect(drained).toBeDefined();
    expect(drained!.report.closeWhileDraining).toBe(drained!.report.finishedWhileDraining);
    expect(drained!.report.finishedWhileDraining).toBeGreaterThanOrEqual(3);
    // Every request it had in flight finished; none was cut.
    expect(drained!.result.inflightAtStart).toBeGreaterThanOrEqual(3);
    expect(drained!.result.forced).toBe(0);
    expect(drained!.report.aborted).toBe(0);
    // It exited by itself, with code 0.
    expect(exit).toEqual({ code: 0, signal: null });
    // The other two kept serving: every call sent after the exit was answered by them.
    const others = new Set(instances.slice(1).map((i) => i.url));
    const afterExit = calls.filter((c) => c.sentAt > phases[2]!.at);
    expect(afterExit.length).toBeGreaterThan(0);
    for (const c of afterExit) expect(others.has(c.instance ?? "")).toBe(true);
  });
});

/** A node:http server behind `server.handler(fn)` on 127.0.0.1, port 0. */
async function listen(handler: http.RequestListener): Promise<{ server: http.Server; url: string; port: number }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  defer(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        if (server.listening) server.close(() => resolve());
        else resolve();
      }),
  );
  const port = (server.address() as AddressInfo).port;
  return { server, url: `http://127.0.0.1:${port}`, port };
}

/** A deferred: a promise and its resolve. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe("drain in process", () => {
  it("runs in order: readiness fails, then the registrations are revoked, then the listener closes; /healthz stays 200 throughout", async () => {
    const order: string[] = [];
    const revoking = gate();
    const release = gate();
    const registration = {
      close: async () => {
        order.push("deregister");
        revoking.open();
        await release.promise;
        order.push("deregistered");
      },
    };
    const server = inbound({
      service: "order",
      drain: { deregister: [registration], delayMs: 50, graceMs: 2000 },
      onWarning: () => {},
    });
    defer(() => server.close());
    server.events.onDrain((e: DrainEvent) => order.push(e.phase));
    const held = gate();
    const {
      server: httpServer,
      url,
      port,
    } = await listen(
      server.handler(async (req, res) => {
        if (req.url === "/held") await held.promise;
        res.end("ok");
      }),
    );
    server.attach(httpServer);
    const agent = new Agent({ connections: 4 });
    defer(() => agent.close());
    expect((await request(`${url}/readyz`, { dispatcher: agent })).statusCode).toBe(200);
    // In flight when the drain begins: its response will say Connection: close.
    const inflight = request(`${url}/held`, { dispatcher: agent });
    await until(() => server.snapshot().inflight === 1, "the held request to be in flight");

    const drained = server.drain();
    expect(server.drain()).toBe(drained); // one drain, however often it is asked for
    await revoking.promise;
    // Deregistering: readiness already fails, liveness still answers, the listener still accepts.
    expect(order).toEqual(["draining", "deregister"]);
    expect(server.state).toBe("draining");
    expect(await statusOf(`${url}/readyz`)).toBe(503);
    expect(await statusOf(`${url}/healthz`)).toBe(200);
    const during = await request(`${url}/work`, { dispatcher: agent });
    expect(during.statusCode).toBe(200);
    expect(during.headers.connection).toBe("close");
    await during.body.text();
    expect(await refuses(port)).toBe(false);
    release.open();

    // Closing: no new connection, while the held request is still in flight.
    await until(() => order.includes("closing"), "the closing phase");
    expect(order).toEqual(["draining", "deregister", "deregistered", "closing"]);
    expect(await refuses(port)).toBe(true);
    expect(server.state).toBe("draining");
    held.open();
    const res = await inflight;
    expect(res.statusCode).toBe(200);
    expect(res.headers.connection).toBe("close");
    expect(await res.body.text()).toBe("ok");

    const result = await drained;
    expect(order).toEqual(["draining", "deregister", "deregistered", "closing", "closed"]);
    expect(result).toMatchObject({ inflightAtStart: 1, forced: 0 });
    expect(server.state).toBe("closed");
    expect(httpServer.listening).toBe(false);
    expect(server.drain()).toBe(drained);
    expect(server.snapshot().counters.aborted).toBe(0);
  });

  it("closes idle keep-alive connections when the listener closes, so close() does not wait for their timeout", async () => {
    const server = inbound({ service: "idle", drain: { delayMs: 0, graceMs: 2000 }, onWarning: () => {} });
    defer(() => server.close());
    const { server: httpServer, port } = await listen(server.handler((_req, res) => res.end("ok")));
    httpServer.keepAliveTimeout = 60_000;
    // A raw keep-alive connection that answered once, then sits idle.
    const socket = net.connect(port, "127.0.0.1");
    defer(async () => socket.destroy());
    let received = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (received += chunk));
    const ended = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.write("GET /one HTTP/1.1\r\nHost: x\r\n\r\n");
    await until(() => received.endsWith("ok"), "the first answer");
    expect(received).toMatch(/connection: keep-alive/i);
    const result = await server.drain();
    await ended;
    expect(result).toMatchObject({ inflightAtStart: 0, forced: 0 });
    expect(httpServer.listening).toBe(false);
  });

  it("cuts a request slower than graceMs, counts it in forced, and still completes", async () => {
    const warnings: string[] = [];
    const server = inbound({
      service: "grace",
      drain: { delayMs: 20, graceMs: 300 },
      onWarning: (m) => warnings.push(m),
    });
    defer(() => server.close());
    const phases: DrainEvent[] = [];
    server.events.onDrain((e) => phases.push(e));
    let handlerSawAbort = false;
    const { server: httpServer, url } = await listen(
      server.handler((req, res) => {
        if (req.url !== "/slow") return void res.end("ok");
        // Far slower than the grace; bounded by the test's own cleanup.
        const timer = setTimeout(() => res.end("too late"), 20_000);
        res.on("close", () => {
          clearTimeout(timer);
          handlerSawAbort = !res.writableFinished;
        });
      }),
    );
    const agent = new Agent({ connections: 4 });
    defer(() => agent.close());
    const fast = await request(`${url}/fast`, { dispatcher: agent });
    expect(await fast.body.text()).toBe("ok");
    const slow = request(`${url}/slow`, { dispatcher: agent }).then(
      () => "answered",
      (error: { code?: string }) => error.code ?? "error",
    );
    await until(() => server.snapshot().inflight === 1, "the slow request to be in flight");
    const result = await server.drain();
    expect(result.inflightAtStart).toBe(1);
    expect(result.forced).toBe(1);
    expect(result.durationMs).toBeGreaterThanOrEqual(300);
    expect(await slow).toBe("UND_ERR_SOCKET"); // its connection was cut: "other side closed"
    // The cut request has ended (recorded as aborted) by the time the drain resolves.
    expect(handlerSawAbort).toBe(true);
    expect(server.snapshot()).toMatchObject({ state: "closed", inflight: 0, counters: { aborted: 1 } });
    expect(phases.map((e) => [e.phase, e.inflight])).toEqual([
      ["draining", 1],
      ["closing", 1],
      ["closed", 0],
    ]);
    expect(httpServer.listening).toBe(false);
    expect(warnings.some((w) => /1 request\(s\) still running after the 300 ms drain grace/.test(w))).toBe(true);
  });
});

/**
 * gRPC through weft's stack, against real `@grpc/grpc-js` servers: in this process for most
 * rules, in child processes for the replica that is killed (SIGKILL, by the pid we started).
 */
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { createMesh, roundRobin, runWithContext, staticDiscovery } from "weft";
import {
  grpcClient,
  type GrpcBidiStreamMethod,
  type GrpcClientOptions,
  type GrpcClientStreamMethod,
  type GrpcServerStreamMethod,
  type GrpcServiceClient,
  type GrpcUnaryMethod,
} from "weft/grpc";
import {
  deadlineLeft,
  loadEcho,
  reply,
  startEchoServer,
  startGrpcReplica,
  status,
  type EchoHandlers,
  type EchoReply,
  type EchoRequest,
  type EchoServer,
} from "../helpers/grpc.js";
import type { Replica } from "../helpers/replicas.js";
import { defer, scoped } from "../helpers/scope.js";
import { refusedPort } from "../helpers/server.js";
import { until } from "../helpers/until.js";
import { runScript } from "../helpers/script.js";
import { rejection } from "../helpers/rejection.js";

interface EchoMethods {
  get: GrpcUnaryMethod<Partial<EchoRequest>, EchoReply>;
  put: GrpcUnaryMethod<Partial<EchoRequest>, EchoReply>;
  list: GrpcServerStreamMethod<Partial<EchoRequest>, EchoReply>;
  collect: GrpcClientStreamMethod<Partial<EchoRequest>, EchoReply>;
  chat: GrpcBidiStreamMethod<Partial<EchoRequest>, EchoReply>;
}

const Echo = loadEcho();

function echo(urls: string[], options: Partial<GrpcClientOptions> = {}): GrpcServiceClient<EchoMethods> {
  return scoped(grpcClient<EchoMethods>(Echo, { service: "echo", discovery: staticDiscovery(urls), ...options }));
}

async function server(handlers: EchoHandlers = {}): Promise<EchoServer> {
  return scoped(await startEchoServer(handlers));
}

/** The ServiceError a call rejects with. */
const failure = (pending: Promise<unknown>): Promise<grpc.ServiceError> => rejection<grpc.ServiceError>(pending);

/** Every message of a stream, and how it ended. */
function drain<T>(
  stream: grpc.ClientReadableStream<T>,
): Promise<{ messages: T[]; error: grpc.ServiceError | null; status: grpc.StatusObject }> {
  const messages: T[] = [];
  let error: grpc.ServiceError | null = null;
  return new Promise((resolve) => {
    stream.on("data", (m: T) => messages.push(m));
    stream.on("error", (e: grpc.ServiceError) => (error = e));
    stream.on("status", (s: grpc.StatusObject) => resolve({ messages, error, status: s }));
  });
}

describe("unary calls", () => {
  it("round-trips a message and its metadata, as a Promise and with a callback", async () => {
    const s = await server({
      Get: (call, callback) => {
        call.sendMetadata(new grpc.Metadata());
        const trailers = new grpc.Metadata();
        trailers.set("x-seen", String(call.metadata.get("x-tenant")[0]));
        trailers.set("x-bytes-bin", call.metadata.get("x-token-bin")[0] as Buffer);
        callback(null, reply(call.request), trailers);
      },
    });
    const c = echo([s.url]);
    const metadata = new grpc.Metadata();
    metadata.set("x-tenant", "acme");
    metadata.set("x-token-bin", Buffer.from([0, 1, 254, 255]));
    expect((await c.get({ text: "hello" }, metadata)).text).toBe("hello");
    const statuses: grpc.StatusObject[] = [];
    const answer = await new Promise<EchoReply | undefined>((resolve, reject) => {
      const call = c.get({ text: "again" }, metadata, (error, response) => (error ? reject(error) : resolve(response)));
      call.on("status", (st: grpc.StatusObject) => statuses.push(st));
    });
    expect(answer?.text).toBe("again");
    await until(() => statuses.length === 1, "the status event");
    expect(statuses[0]?.code).toBe(grpc.status.OK);
    expect(statuses[0]?.metadata.get("x-seen")).toEqual(["acme"]);
    expect(statuses[0]?.metadata.get("x-bytes-bin")).toEqual([Buffer.from([0, 1, 254, 255])]);
    expect(s.calls.Get).toBe(2);
    expect(c.weft.snapshot().counters.attempts).toBe(2);
  });

  it("gives the caller a ServiceError with the server's code, details and trailers", async () => {
    const s = await server({
      Get: (_call, callback) => callback(status(grpc.status.NOT_FOUND, "no such item", { "x-why": "gone" })),
    });
    const c = echo([s.url]);
    const error = await failure(c.get({ text: "x" }));
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe(grpc.status.NOT_FOUND);
    expect(error.details).toBe("no such item");
    expect(error.message).toBe("5 NOT_FOUND: no such item");
    expect(error.metadata.get("x-why")).toEqual(["gone"]);
    // NOT_FOUND is a 404 to the classifier: not retried, and no breaker counts it.
    expect(s.calls.Get).toBe(1);
  });
});

describe("what is resent", () => {
  it("resends UNAVAILABLE for an idempotent method (by the proto's idempotency_level)", async () => {
    let calls = 0;
    const s = await server({
      Get: (call, callback) =>
        ++calls === 1 ? callback(status(grpc.status.UNAVAILABLE, "restarting")) : callback(null, reply(call.request)),
    });
    const c = echo([s.url]);
    expect((await c.get({ text: "ok" })).text).toBe("ok");
    expect(s.calls.Get).toBe(2);
  });

  it("does not resend UNAVAILABLE for a method that is not idempotent and reached the server", async () => {
    const s = await server({ Put: (_call, callback) => callback(status(grpc.status.UNAVAILABLE, "busy")) });
    const c = echo([s.url]);
    const error = await failure(c.put({ text: "once" }));
    expect(error.code).toBe(grpc.status.UNAVAILABLE);
    expect(error.details).toBe("busy");
    expect(s.calls.Put).toBe(1);
  });

  it("resends a method made idempotent by the method config", async () => {
    let calls = 0;
    const s = await server({
      Put: (call, callback) =>
        ++calls === 1 ? callback(status(grpc.status.UNAVAILABLE, "busy")) : callback(null, reply(call.request)),
    });
    const c = echo([s.url], { grpc: { methods: { Put: { idempotent: true } } } });
    expect((await c.put({ text: "twice" })).text).toBe("twice");
    expect(s.calls.Put).toBe(2);
  });

  it("resends a call refused before any connection, for any method (grpc-js's 'No connection established')", async () => {
    const s = await server();
    const refused = `http://127.0.0.1:${await refusedPort()}`;
    const c = echo([refused, s.url], { balancer: roundRobin(), outlier: false, breaker: false });
    for (let i = 0; i < 6; i++) expect((await c.put({ text: `put ${i}` })).text).toBe(`put ${i}`);
    // Every Put reached the live server exactly once; the refused endpoint was tried and skipped.
    expect(s.calls.Put).toBe(6);
    const row = c.weft.snapshot().endpoints.find((e) => e.url === refused);
    expect(row?.failures).toBeGreaterThan(0);
  });

  it("does not mistake a server relaying its upstream's 'No connection established' for never sent", async () => {
    const relayed =
      "No connection established. Last error: Error: connect ECONNREFUSED 10.0.0.9:50051. Resolution note: ";
    const s = await server({ Put: (_call, callback) => callback(status(grpc.status.UNAVAILABLE, relayed)) });
    const c = echo([s.url]);
    const error = await failure(c.put({ text: "once" }));
    expect(error.code).toBe(grpc.status.UNAVAILABLE);
    expect(error.details).toBe(relayed);
    expect(s.calls.Put).toBe(1);
  });

  it("honours RESOURCE_EXHAUSTED's grpc-retry-pushback-ms before resending (to the millisecond)", async () => {
    const at: number[] = [];
    const s = await server({
      Put: (call, callback) => {
        at.push(performance.now());
        if (at.length === 1)
          callback(status(grpc.status.RESOURCE_EXHAUSTED, "slow down", { "grpc-retry-pushback-ms": "300" }));
        else callback(null, reply(call.request));
      },
    });
    const c = echo([s.url]);
    expect((await c.put({ text: "later" })).text).toBe("later");
    expect(at).toHaveLength(2);
    expect((at[1] as number) - (at[0] as number)).toBeGreaterThanOrEqual(290);
  });

  it("does not resend RESOURCE_EXHAUSTED with a negative pushback (the server says: do not retry)", async () => {
    const s = await server({
      Get: (_call, callback) =>
        callback(status(grpc.status.RESOURCE_EXHAUSTED, "quota", { "grpc-retry-pushback-ms": "-1" })),
    });
    const c = echo([s.url]);
    const error = await failure(c.get({ text: "x" }));
    expect(error.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(s.calls.Get).toBe(1);
  });

  it("hedges an idempotent method by its method config", async () => {
    let calls = 0;
    const s = await server({
      Get: (call, callback) => {
        const slow = ++calls === 1;
        setTimeout(() => callback(null, reply(call.request, { index: calls })), slow ? 2000 : 1);
      },
    });
    const c = echo([s.url], { grpc: { methods: { Get: { hedge: { delayMs: 50 } } } } });
    const started = performance.now();
    expect((await c.get({ text: "fast" })).text).toBe("fast");
    expect(performance.now() - started).toBeLessThan(1000);
    expect(s.calls.Get).toBe(2);
  });
});

describe("deadlines", () => {
  it("maps running out of the deadline to DEADLINE_EXCEEDED, and the server got it as grpc-timeout", async () => {
    const seen: number[] = [];
    const s = await server({
      Get: (call, callback) => {
        seen.push(deadlineLeft(call));
        setTimeout(() => callback(null, reply(call.request)), 1000);
      },
    });
    const c = echo([s.url], { timeout: { totalMs: 200 } });
    const started = performance.now();
    const error = await failure(c.get({ text: "slow" }));
    expect(error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(performance.now() - started).toBeLessThan(900);
    expect(seen[0]).toBeGreaterThan(0);
    expect(seen[0]).toBeLessThanOrEqual(200);
  });

  it("takes a call's own deadline (grpc-js's CallOptions.deadline)", async () => {
    const s = await server({ Put: (call, callback) => setTimeout(() => callback(null, reply(call.request)), 1000) });
    const c = echo([s.url]);
    const error = await failure(c.put({ text: "slow" }, { deadline: Date.now() + 150 }));
    expect(error.code).toBe(grpc.status.DEADLINE_EXCEEDED);
  });

  it("sends no longer a grpc-timeout than the deadline inherited from the request being served", async () => {
    const s = await server();
    const c = echo([s.url], { timeout: { totalMs: 10_000 } });
    const answer = await runWithContext({ timeoutMs: 300 }, () => c.get({ text: "inherit" }));
    expect(answer.deadlineMs).toBeGreaterThan(0);
    expect(answer.deadlineMs).toBeLessThanOrEqual(300);
  });
});

describe("streaming", () => {
  it("streams a server's messages to the caller", async () => {
    const s = await server();
    const c = echo([s.url]);
    const { messages, error, status: st } = await drain(c.list({ text: "m", count: 3 }));
    expect(messages.map((m) => m.index)).toEqual([0, 1, 2]);
    expect(error).toBeNull();
    expect(st.code).toBe(grpc.status.OK);
  });

  it("resends a server stream that failed before its first message (idempotent)", async () => {
    let calls = 0;
    const s = await server({
      List: (call) => {
        if (++calls === 1) return call.emit("error", status(grpc.status.UNAVAILABLE, "not yet"));
        for (let i = 0; i < 2; i++) call.write(reply(call.request, { index: i }));
        call.end();
      },
    });
    const c = echo([s.url]);
    const { messages, error } = await drain(c.list({ text: "m" }));
    expect(error).toBeNull();
    expect(messages).toHaveLength(2);
    expect(s.calls.List).toBe(2);
  });

  it("bounds a server stream by the call's deadline, not the per-try timeout (that ends at its first message)", async () => {
    const s = await server({
      List: (call) => {
        let i = 0;
        const timer = setInterval(() => {
          call.write(reply(call.request, { index: i }));
          if (++i === 5) {
            clearInterval(timer);
            call.end();
          }
        }, 60);
      },
    });
    const c = echo([s.url], { timeout: { attemptMs: 150, totalMs: 5000 } });
    const { messages, error } = await drain(c.list({ text: "slow stream" }));
    expect(error).toBeNull();
    expect(messages).toHaveLength(5);
  });

  it("never resends a server stream after its first message", async () => {
    const s = await server({
      List: (call) => {
        call.write(reply(call.request, { index: 0 }));
        setTimeout(() => call.emit("error", status(grpc.status.UNAVAILABLE, "went away")), 20);
      },
    });
    const c = echo([s.url]);
    const { messages, error } = await drain(c.list({ text: "m" }));
    expect(messages).toHaveLength(1);
    expect(error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(s.calls.List).toBe(1);
  });

  it("sends a client stream once, even for a method marked idempotent", async () => {
    const ok = await server();
    const c = echo([ok.url]);
    const joined = await new Promise<EchoReply | undefined>((resolve, reject) => {
      const call = c.collect((error, response) => (error ? reject(error) : resolve(response)));
      for (const text of ["a", "b", "c"]) call.write({ text });
      call.end();
    });
    expect(joined?.text).toBe("a,b,c");

    const failing = await server({ Collect: (_call, callback) => callback(status(grpc.status.UNAVAILABLE, "no")) });
    const d = echo([failing.url], { service: "echo-failing", grpc: { methods: { Collect: { idempotent: true } } } });
    const error = await new Promise<grpc.ServiceError | null>((resolve) => {
      const call = d.collect((e) => resolve(e));
      call.write({ text: "a" });
      call.end();
    });
    expect(error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(failing.calls.Collect).toBe(1);
  });

  it("runs a bidi stream", async () => {
    const s = await server();
    const c = echo([s.url]);
    const call = c.chat();
    const got: string[] = [];
    const done = new Promise<grpc.StatusObject>((resolve) => {
      call.on("data", (m: EchoReply) => got.push(m.text));
      call.on("status", resolve);
    });
    call.write({ text: "one" });
    call.write({ text: "two" });
    call.end();
    expect((await done).code).toBe(grpc.status.OK);
    expect(got).toEqual(["one", "two"]);
  });

  it("cancels a server stream the caller stops reading (a `for await` that breaks)", async () => {
    let cancelled = false;
    const s = await server({
      List: (call) => {
        call.on("cancelled", () => (cancelled = true));
        let i = 0;
        const timer = setInterval(() => call.write(reply(call.request, { index: i++ })), 5);
        call.on("cancelled", () => clearInterval(timer));
      },
    });
    const c = echo([s.url]);
    const seen: number[] = [];
    for await (const m of c.list({ text: "endless" }) as AsyncIterable<EchoReply>) {
      seen.push(m.index);
      if (seen.length === 3) break;
    }
    expect(seen).toEqual([0, 1, 2]);
    await until(() => cancelled, "the server to see the call cancelled");
  });

  it("cancels a call with call.cancel(): CANCELLED, as grpc-js reports it", async () => {
    const s = await server({ Get: () => {} });
    const c = echo([s.url]);
    const result = new Promise<grpc.ServiceError | null>((resolve) => {
      const call = c.get({ text: "never" }, (error) => resolve(error));
      setTimeout(() => call.cancel(), 50);
    });
    const error = await result;
    expect(error?.code).toBe(grpc.status.CANCELLED);
    expect(error?.details).toBe("Cancelled on client");
  });
});

describe("active health checks", () => {
  it("check an endpoint with a unary call to the gRPC health service, by its status", async () => {
    // grpc.health.v1.Health/Check, hand-written: the request and reply as raw protobuf bytes.
    let serving = false;
    const health = new grpc.Server();
    const raw = (bytes: Buffer): Buffer => bytes;
    health.addService(
      {
        Check: {
          path: "/grpc.health.v1.Health/Check",
          requestStream: false,
          responseStream: false,
          requestSerialize: raw,
          requestDeserialize: raw,
          responseSerialize: raw,
          responseDeserialize: raw,
        },
      },
      {
        Check: (_call: unknown, callback: grpc.sendUnaryData<Buffer>) =>
          serving ? callback(null, Buffer.from([8, 1])) : callback(status(grpc.status.UNAVAILABLE, "draining")),
      },
    );
    const port = await new Promise<number>((resolve, reject) =>
      health.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    defer(async () => health.forceShutdown());
    const url = `http://127.0.0.1:${port}`;
    const c = echo([url], {
      healthCheck: { path: "/grpc.health.v1.Health/Check", intervalMs: 50, timeoutMs: 40, unhealthyThreshold: 2 },
    });
    const healthy = (): boolean | undefined => c.weft.snapshot().endpoints[0]?.activeHealthy;
    await until(() => healthy() === false, "the endpoint to fail its checks");
    serving = true;
    await until(() => healthy() === true, "the endpoint to pass its checks again");
  });
});

describe("replicas in other processes", () => {
  async function replicas(): Promise<Replica[]> {
    const started = await Promise.all([startGrpcReplica(), startGrpcReplica(), startGrpcReplica()]);
    defer(() => Promise.all(started.map((r) => r.stop())));
    return started;
  }

  /** Runs `total` Get calls, `concurrency` at a time; `before(i)` runs before the i-th call starts. */
  async function load(
    c: GrpcServiceClient<EchoMethods>,
    total: number,
    concurrency: number,
    before: (i: number) => void = () => {},
  ): Promise<{ pids: number[]; failed: Map<string, number> }> {
    const pids: number[] = [];
    const failed = new Map<string, number>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < total) {
        before(next++);
        try {
          pids.push((await c.get({ text: "x" })).pid);
        } catch (error) {
          const key = `${(error as grpc.ServiceError).code}: ${(error as Error).message}`;
          failed.set(key, (failed.get(key) ?? 0) + 1);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return { pids, failed };
  }

  it("loses no unary call when one of three replicas is killed (SIGKILL) under load", async () => {
    const rs = await replicas();
    const c = echo(rs.map((r) => r.url));
    const victim = rs[1] as Replica;
    const { pids, failed } = await load(c, 600, 16, (i) => {
      if (i === 150) victim.process.kill("SIGKILL");
    });
    expect(Object.fromEntries(failed)).toEqual({});
    expect(pids).toHaveLength(600);
    expect(victim.process.signalCode).toBe("SIGKILL");
    // Every replica served before the kill; the calls in flight on the dead one were resent.
    expect(new Set(pids.slice(0, 100)).size).toBe(3);
    expect(c.weft.snapshot().counters.attempts).toBeGreaterThan(600);
  });

  it("spreads calls over the replicas, and holds a dead one out (outlier detection, breaker)", async () => {
    const rs = await replicas();
    const c = echo(
      rs.map((r) => r.url),
      { balancer: roundRobin() },
    );
    const before = await load(c, 90, 6);
    const perPid = new Map<number, number>();
    for (const pid of before.pids) perPid.set(pid, (perPid.get(pid) ?? 0) + 1);
    expect([...perPid.values()].sort()).toEqual([30, 30, 30]);

    const victim = rs[0] as Replica;
    await victim.stop();
    const held = (): boolean => {
      const row = c.weft.snapshot().endpoints.find((e) => e.url === victim.url);
      return row?.state === "ejected" || row?.breaker === "open";
    };
    let failed = 0;
    await until(async () => {
      const { failed: f } = await load(c, 10, 2);
      for (const n of f.values()) failed += n;
      return held();
    }, "the dead replica to be held out");
    expect(failed).toBe(0);
    // Held out: the next calls go to the two live replicas only, at the first attempt.
    const attempts = c.weft.snapshot().counters.attempts;
    const after = await load(c, 30, 3);
    expect(after.failed.size).toBe(0);
    expect(new Set(after.pids).has(victim.process.pid as number)).toBe(false);
    expect(c.weft.snapshot().counters.attempts - attempts).toBe(30);
  });
});

describe("an optional peer dependency", () => {
  it("is not loaded by importing weft or weft/grpc, only by grpcClient()", async () => {
    const { code, stdout, stderr } = await runScript(["test/fixtures/grpc-not-loaded.ts"]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({ atImport: [], afterClient: true });
  });
});

describe("close()", () => {
  it("leaves no channel, timer or socket behind: the process exits by itself", async () => {
    const s = await server();
    // A healthy run exits in about a second.
    const { code, signal, stdout, stderr } = await runScript(["test/fixtures/grpc-close-exits.ts", s.url]);
    expect(stderr).toBe("");
    expect(signal).toBeNull();
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({ reply: "unary", messages: 3, alive: [] });
  });
});

describe("a mesh", () => {
  it("takes a gRPC client among its clients: its snapshot, its defaults, one close()", async () => {
    const s = await server();
    const mesh = createMesh({ defaults: { timeout: { totalMs: 1234 } } });
    const c = grpcClient<EchoMethods>(Echo, { mesh, service: "echo-in-mesh", discovery: staticDiscovery([s.url]) });
    const answer = await c.get({ text: "mesh" });
    expect(answer.deadlineMs).toBeLessThanOrEqual(1234);
    expect(mesh.snapshot().clients.map((x) => x.service)).toEqual(["echo-in-mesh"]);
    expect(mesh.snapshot().clients[0]?.transport).toBe("grpc");
    await mesh.close();
    expect(c.weft.closed).toBe(true);
  });
});

describe("options", () => {
  it("names a bad method config by its option path, as the client's own rules word it", async () => {
    const urls = ["http://127.0.0.1:1"];
    expect(() =>
      grpcClient(Echo, { service: "bad", discovery: staticDiscovery(urls), grpc: { methods: { Nope: {} } } }),
    ).toThrow(/grpc\.methods\.Nope.*a method of the service: Get, get, Put, put/);
    expect(() =>
      grpcClient(Echo, {
        service: "bad",
        discovery: staticDiscovery(urls),
        grpc: { methods: { Get: { retry: { maxAttempts: 0 } } } },
      }),
    ).toThrow(expect.objectContaining({ option: "grpc.methods.Get.retry.maxAttempts" }));
    // The transport is grpc-js: a client's own transport is refused (tls is taken: grpc-tls.test.ts).
    expect(() =>
      grpcClient(Echo, { service: "bad", discovery: staticDiscovery(urls), transport: {} } as never),
    ).toThrow(/invalid option transport: .*grpc-js/);
  });
});

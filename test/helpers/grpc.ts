/**
 * Real gRPC servers for the gRPC tests (and the gRPC bench): `@grpc/grpc-js` serving the Echo
 * service of test/fixtures/grpc/echo.proto (loaded with `@grpc/proto-loader`), in this process
 * or — for tests that kill one — in a child process, stopped by the pid we started.
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as loader from "@grpc/proto-loader";
import { forkReplica, type Replica } from "./replicas.js";

const ECHO_PROTO = fileURLToPath(new URL("../fixtures/grpc/echo.proto", import.meta.url));

export interface EchoRequest {
  text: string;
  behaviour: string;
  count: number;
  delayMs: number;
  payload: Buffer;
}

export interface EchoReply {
  text: string;
  pid: number;
  deadlineMs: number;
  index: number;
  payload: Buffer;
}

/** The generated client class of weft.test.Echo (its `service` is the definition weft reads). */
export function loadEcho(): grpc.ServiceClientConstructor {
  const definition = loader.loadSync(ECHO_PROTO, { defaults: true });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    weft: { test: { Echo: grpc.ServiceClientConstructor } };
  };
  return pkg.weft.test.Echo;
}

export type EchoHandlers = Partial<{
  Get: grpc.handleUnaryCall<EchoRequest, EchoReply>;
  Put: grpc.handleUnaryCall<EchoRequest, EchoReply>;
  List: grpc.handleServerStreamingCall<EchoRequest, EchoReply>;
  Collect: grpc.handleClientStreamingCall<EchoRequest, EchoReply>;
  Chat: grpc.handleBidiStreamingCall<EchoRequest, EchoReply>;
}>;

export interface EchoServer {
  /** `http://127.0.0.1:port`: a weft endpoint (plaintext gRPC). */
  readonly url: string;
  readonly port: number;
  /** Calls received, by method name. */
  readonly calls: Record<string, number>;
  close(): Promise<void>;
}

/** Milliseconds left before the call's deadline, as the server sees it (-1: none). */
export function deadlineLeft(call: { getDeadline(): grpc.Deadline }): number {
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return at === Infinity ? -1 : Math.round(at - Date.now());
}

/** A reply naming this process (what the default handlers answer). */
export function reply(request: Partial<EchoRequest>, extra: Partial<EchoReply> = {}): EchoReply {
  return { text: request.text ?? "", pid: process.pid, deadlineMs: -1, index: 0, payload: Buffer.alloc(0), ...extra };
}

const DEFAULTS: Required<EchoHandlers> = {
  Get: (call, callback) => callback(null, reply(call.request, { deadlineMs: deadlineLeft(call) })),
  Put: (call, callback) => callback(null, reply(call.request)),
  List: (call) => {
    for (let i = 0; i < call.request.count; i++) call.write(reply(call.request, { index: i }));
    call.end();
  },
  Collect: (call, callback) => {
    const texts: string[] = [];
    call.on("data", (r: EchoRequest) => texts.push(r.text));
    call.on("end", () => callback(null, reply({ text: texts.join(",") })));
  },
  Chat: (call) => {
    let index = 0;
    call.on("data", (r: EchoRequest) => call.write(reply(r, { index: index++ })));
    call.on("end", () => call.end());
  },
};

/** An Echo server on 127.0.0.1, port 0: `handlers` replace the defaults; every call is counted. */
export async function startEchoServer(handlers: EchoHandlers = {}): Promise<EchoServer> {
  const Echo = loadEcho();
  const server = new grpc.Server();
  const calls: Record<string, number> = {};
  const counted = Object.fromEntries(
    Object.entries({ ...DEFAULTS, ...handlers }).map(([name, handler]) => [
      name,
      (call: unknown, callback: unknown) => {
        calls[name] = (calls[name] ?? 0) + 1;
        (handler as (call: unknown, callback: unknown) => void)(call, callback);
      },
    ]),
  );
  server.addService(Echo.service, counted);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, p) =>
      error === null ? resolve(p) : reject(error),
    ),
  );
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
}

/** A status error as a handler answers it. */
export function status(code: grpc.status, details: string, trailers: Record<string, string> = {}): grpc.ServiceError {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(trailers)) metadata.set(key, value);
  return Object.assign(new Error(details), { code, details, metadata });
}

/** An Echo server in a child process (test/fixtures/grpc-replica.ts), killed by its pid. */
export function startGrpcReplica(): Promise<Replica> {
  return forkReplica(fileURLToPath(new URL("../fixtures/grpc-replica.ts", import.meta.url)));
}

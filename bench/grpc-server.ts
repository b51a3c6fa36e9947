/**
 * The upstream of the gRPC bench (bench/grpc.ts), in its own process: `@grpc/grpc-js` serving
 * the Echo service of test/fixtures/grpc/echo.proto, `Get` answering at once. Prints
 * `PORT <n>` once it listens on 127.0.0.1.
 */
import * as grpc from "@grpc/grpc-js";
import { loadEcho, type EchoReply, type EchoRequest } from "../test/helpers/grpc.js";
import { stopWithParent } from "./child.js";

const Echo = loadEcho();
const server = new grpc.Server();
const answer: EchoReply = { text: "ok", pid: process.pid, deadlineMs: -1, index: 0, payload: Buffer.alloc(0) };
server.addService(Echo.service, {
  Get: (_call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, callback: grpc.sendUnaryData<EchoReply>) =>
    callback(null, answer),
});
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error !== null) throw error;
  process.stdout.write(`PORT ${port}\n`);
});
stopWithParent(() => server.forceShutdown());

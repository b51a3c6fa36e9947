/**
 * One catalog instance, in a process of its own (started by main.ts): an HTTP server on
 * 127.0.0.1, port 0, answering its own name, that registers itself in etcd where the caller's
 * `etcdDiscovery` finds it.
 *
 *   npx tsx examples/etcd-mesh/instance.ts <name> <etcd url> <prefix>   (main.ts does this)
 *
 * The registration holds a 2 s lease kept alive in the background. The shutdown order is what
 * makes a graceful stop cost no call: on SIGTERM it first revokes the lease (`close()`: callers
 * drop the endpoint within milliseconds), keeps serving for a short drain while calls already
 * sent finish, and only then closes the server. A SIGKILL skips all that: the key stays until the
 * lease expires, and callers ride it out with retries and outlier detection.
 *
 * It tells the parent over IPC when it starts registering, is registered, and starts
 * deregistering (wall-clock times, so the parent can time how fast the caller saw each change),
 * and shuts down the same way when the IPC channel closes, so an instance never outlives the
 * example. It runs in a process group of its own: a Ctrl-C in the terminal reaches the parent,
 * which stops it.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { etcdRegistration, type EtcdRegistration } from "weft";
import { wallMs, type InstanceMessage } from "./instances.js";

/** Calls already sent here get this long to finish after the key is gone. */
const DRAIN_MS = 200;
/** After the drain, connections still open are cut after this long. */
const CLOSE_GRACE_MS = 1000;

const [name = "instance", etcdUrl = "http://127.0.0.1:2379", prefix = "/services/catalog/"] = process.argv.slice(2);
const send = (message: InstanceMessage): Promise<void> =>
  new Promise((resolve) => (process.connected && process.send ? process.send(message, () => resolve()) : resolve()));

const server = http.createServer((_req, res) => {
  res.setHeader("content-type", "text/plain");
  res.end(name);
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const registeringAtMs = wallMs();
const registering: Promise<EtcdRegistration> = etcdRegistration({ hosts: [etcdUrl], prefix, url, ttlSeconds: 2, metadata: { instance: name } });
let stopping: Promise<void> | undefined;

async function shutdown(tellParent: boolean): Promise<void> {
  // 1. Deregister: revoking the lease deletes the key; watchers see it at once.
  const registration = await registering.catch(() => undefined);
  if (tellParent) void send({ type: "deregistering", atMs: wallMs() });
  await registration?.close();
  // 2. Drain: calls picked before the caller saw the delete are still arriving or in flight.
  await new Promise((resolve) => setTimeout(resolve, DRAIN_MS));
  // 3. Close: no new connections; idle keep-alive ones close now, busy ones after their reply.
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const cut = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
  await closed;
  clearTimeout(cut);
  process.exit(0);
}

const stop = (tellParent: boolean): void => void (stopping ??= shutdown(tellParent));
process.on("SIGTERM", () => stop(true));
process.on("disconnect", () => stop(false));

try {
  const registration = await registering;
  await send({ type: "registered", url, key: registration.key, startedAtMs: registeringAtMs, atMs: wallMs() });
} catch (error) {
  await send({ type: "error", message: error instanceof Error ? error.message : String(error) });
  process.exit(1);
}

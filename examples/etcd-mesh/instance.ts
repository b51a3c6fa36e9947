/**
 * One catalog instance, in a process of its own (started by main.ts): an HTTP server on
 * 127.0.0.1, port 0, answering its own name through `weft/server`'s `inbound()`, that registers
 * itself in etcd where the caller's `etcdDiscovery` finds it.
 *
 *   npx tsx examples/etcd-mesh/instance.ts <name> <etcd url> <prefix>   (main.ts does this)
 *
 * The registration holds a 2 s lease kept alive in the background. The shutdown is the inbound
 * side's drain, whose order is what makes a graceful stop cost no call: on SIGTERM readiness
 * fails and the lease is revoked first (`drain.deregister`: callers drop the endpoint within
 * milliseconds), it keeps serving for a short delay while calls already sent arrive (answering
 * with `Connection: close`), then stops accepting and waits for the requests in flight. A SIGKILL
 * skips all that: the key stays until the lease expires, and callers ride it out with retries
 * and outlier detection.
 *
 * It tells the parent over IPC when it starts registering, is registered, and starts
 * deregistering (wall-clock times, so the parent can time how fast the caller saw each change),
 * and drains the same way when the IPC channel closes, so an instance never outlives the
 * example. It runs in a process group of its own: a Ctrl-C in the terminal reaches the parent,
 * which stops it.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { etcdRegistration } from "weft";
import { inbound } from "weft/server";
import { wallMs, type InstanceMessage } from "./instances.js";

/** After the key is gone, calls already sent here get this long to arrive before the server stops accepting. */
const DRAIN_DELAY_MS = 200;
/** Then requests in flight get this long to finish before their connections are cut. */
const DRAIN_GRACE_MS = 1000;

const [name = "instance", etcdUrl = "http://127.0.0.1:2379", prefix = "/services/catalog/"] = process.argv.slice(2);
const send = (message: InstanceMessage): Promise<void> =>
  new Promise((resolve) => (process.connected && process.send ? process.send(message, () => resolve()) : resolve()));

// The registration is made once the port is known, but the drain must revoke it first: a
// stand-in that closes it whenever it exists.
let registration: Promise<{ close(): Promise<void> }> | undefined;
const deregister = { close: async () => (await registration?.catch(() => undefined))?.close() };
const service = inbound({
  service: "catalog",
  drain: { deregister: [deregister], delayMs: DRAIN_DELAY_MS, graceMs: DRAIN_GRACE_MS },
});

const server = http.createServer(
  service.handler((_req, res) => {
    res.setHeader("content-type", "text/plain");
    res.end(name);
  }),
);
service.attach(server);
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const registeringAtMs = wallMs();
registration = etcdRegistration({ hosts: [etcdUrl], prefix, url, ttlSeconds: 2, metadata: { instance: name } });
let tellParent = true;
service.events.onDrain((e) => {
  if (e.phase === "draining" && tellParent) void send({ type: "deregistering", atMs: wallMs() });
});

const stop = (fromSignal: boolean): void => {
  tellParent = fromSignal;
  void service.drain().then(() => process.exit(0));
};
process.on("SIGTERM", () => stop(true));
process.on("disconnect", () => stop(false));

try {
  const registered = await (registration as ReturnType<typeof etcdRegistration>);
  await send({ type: "registered", url, key: registered.key, startedAtMs: registeringAtMs, atMs: wallMs() });
} catch (error) {
  await send({ type: "error", message: error instanceof Error ? error.message : String(error) });
  process.exit(1);
}

/**
 * One catalog instance of a given version, in a process of its own (started by main.ts): an HTTP
 * server on 127.0.0.1, port 0, serving through `weft/server`'s `inbound()` and answering every
 * call (GET or POST) with its version, so the caller can count who answered. It registers itself
 * in etcd with its version in the discovery metadata — what a route's `subset: { version: "v2" }`
 * selects.
 *
 *   npx tsx examples/canary/instance.ts <name> <etcd url> <prefix> <version>   (main.ts does this)
 *
 * It speaks etcd-mesh's `InstanceMessage` over IPC (registered / deregistering / error), so
 * etcd-mesh's `Instances` starts and stops it; it drains (deregister first) on SIGTERM or when its
 * IPC channel closes, as the etcd-mesh instance does.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { etcdRegistration } from "weft";
import { inbound } from "weft/server";
import { wallMs, type InstanceMessage } from "../etcd-mesh/instances.js";

const [name = "instance", etcdUrl = "http://127.0.0.1:2379", prefix = "/services/catalog/", version = "v1"] =
  process.argv.slice(2);
const send = (message: InstanceMessage): Promise<void> =>
  new Promise((resolve) => (process.connected && process.send ? process.send(message, () => resolve()) : resolve()));

let registration: Promise<{ close(): Promise<void> }> | undefined;
const deregister = { close: async () => (await registration?.catch(() => undefined))?.close() };
const service = inbound({ service: "catalog", drain: { deregister: [deregister], delayMs: 200, graceMs: 1000 } });

const server = http.createServer(
  service.handler((req, res) => {
    // A POST's body is read (and dropped) before the answer, as a real handler would.
    req.resume();
    req.on("end", () => {
      res.setHeader("content-type", "text/plain");
      res.setHeader("x-instance", name);
      res.end(version);
    });
  }),
);
service.attach(server);
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const registeringAtMs = wallMs();
registration = etcdRegistration({
  hosts: [etcdUrl],
  prefix,
  url,
  ttlSeconds: 2,
  metadata: { version, instance: name },
});

const stop = (): void => void service.drain().then(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("disconnect", stop);

try {
  const registered = await (registration as ReturnType<typeof etcdRegistration>);
  await send({ type: "registered", url, key: registered.key, startedAtMs: registeringAtMs, atMs: wallMs() });
} catch (error) {
  await send({ type: "error", message: error instanceof Error ? error.message : String(error) });
  process.exit(1);
}

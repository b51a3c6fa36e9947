/**
 * Per-test cleanup for integration tests: whatever a test starts through these helpers (servers,
 * clients, anything with a close) is closed after it, in reverse order, even when it fails.
 */
import { afterEach } from "vitest";
import { startServer, type Handler, type TestServer } from "./server.js";

const cleanup: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
});

/** Registers `close` to run after the current test. */
export function defer(close: () => Promise<unknown>): void {
  cleanup.push(close);
}

/** Keeps `thing` until the end of the current test, then closes it. */
export function scoped<T extends { close(): Promise<unknown> }>(thing: T): T {
  defer(() => thing.close());
  return thing;
}

/** A real HTTP server on 127.0.0.1, closed after the current test. */
export async function server(handler?: Handler): Promise<TestServer> {
  return scoped(await startServer(handler));
}

/**
 * Starts `server` (http or https) on 127.0.0.1, port 0, and closes it after the current test,
 * open connections included. Returns its port.
 */
export async function listening(server: import("node:http").Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  defer(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return (server.address() as import("node:net").AddressInfo).port;
}

/** Real HTTP servers on 127.0.0.1, port 0, for integration tests. */
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface TestServer {
  readonly url: string;
  readonly port: number;
  /** Requests received, in order. */
  readonly received: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[];
  /** Requests whose client went away before the response finished. */
  aborted: number;
  close(): Promise<void>;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => unknown;

export async function startServer(handler: Handler = (_req, res) => res.end("ok")): Promise<TestServer> {
  const received: TestServer["received"] = [];
  const state = { aborted: 0 };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      received.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      res.on("close", () => {
        if (!res.writableFinished) state.aborted++;
      });
      Promise.resolve(handler(req, res, body)).catch((error: unknown) => {
        res.statusCode = 500;
        res.end(String(error));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    get aborted() {
      return state.aborted;
    },
    set aborted(v: number) {
      state.aborted = v;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port that refuses connections: bound, then closed. */
export async function refusedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

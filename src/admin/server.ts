/**
 * `serveAdmin(mesh)` — the mesh's own page and its machine-readable twins, on a small `node:http`
 * server (Finagle's admin port and Envoy's admin interface, for an in-process mesh):
 *
 * | route | what |
 * |---|---|
 * | `GET /admin` | the live dashboard (one self-contained page, no CDN) |
 * | `GET /admin/events` | Server-Sent Events: a `snapshot` event at once, then an `update` every `intervalMs` (histories cut to what is new: stream.ts) |
 * | `GET /admin/snapshot.json` | `mesh.snapshot()` |
 * | `GET /admin/metrics` | Prometheus text exposition of the same figures |
 *
 * Read-only by design: only GET and HEAD, nothing that changes the mesh. Every answer carries
 * `no-store` and `nosniff`; the page also a strict Content-Security-Policy with a per-response
 * nonce, so even a name that slipped past the page's escaping could not run script.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { InvalidOptionsError, type Mesh } from "../index.js";
import { hostCheck, tokenCheck } from "./auth.js";
import { normalizeAdminOptions, type AdminOptions } from "./options.js";
import { renderPage } from "./page.js";
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from "./prometheus.js";
import { SnapshotStream } from "./stream.js";

/** What `serveAdmin` needs of a mesh: its snapshot. */
export type AdminSource = Pick<Mesh, "snapshot">;

export interface AdminServer {
  /** The dashboard's URL, e.g. `http://127.0.0.1:40123/admin`; the JSON is at `${url}/snapshot.json`. */
  readonly url: string;
  /** Ends the live streams and closes the server and its connections; leaves no timer or socket. */
  close(): Promise<void>;
}

const COMMON_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
});
const JSON_TYPE = "application/json; charset=utf-8";
const ROUTES = ["/admin", "/admin/events", "/admin/snapshot.json", "/admin/metrics"];

/**
 * Serves the admin routes for `mesh`. Binds to 127.0.0.1 on a free port unless told otherwise.
 *
 * Options (all optional): `port` (default 0: a free port), `host` (default `"127.0.0.1"`),
 * `token` (default none: when set, every route wants `Authorization: Bearer <token>` or
 * `?token=<token>`), `intervalMs` (default 1000: how often the dashboard updates, 50–1000).
 * Bad options throw `InvalidOptionsError` naming the option.
 *
 * @example
 * const mesh = createMesh();
 * const admin = await serveAdmin(mesh, { port: 9990 });
 * console.log(`dashboard: ${admin.url}`);   // http://127.0.0.1:9990/admin
 * // …
 * await admin.close();
 */
export async function serveAdmin(mesh: AdminSource, options?: AdminOptions): Promise<AdminServer> {
  if (typeof mesh !== "object" || mesh === null || typeof mesh.snapshot !== "function") {
    throw new InvalidOptionsError(
      "mesh",
      "invalid option mesh: serveAdmin expects a mesh from createMesh() (anything with snapshot())",
    );
  }
  const config = normalizeAdminOptions(options);
  const authorized = tokenCheck(config.token);
  const allowedHost = hostCheck(config.host);
  const stream = new SnapshotStream(() => mesh.snapshot(), config.intervalMs);

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? "/", "http://admin.invalid");
    if (!allowedHost(req))
      return sendJson(res, 403, { error: "host not allowed: the admin server answers loopback names only" });
    if (!authorized(req, url)) {
      res.setHeader("www-authenticate", 'Bearer realm="weft admin"');
      return sendJson(res, 401, { error: "unauthorized: send Authorization: Bearer <token>, or ?token=<token>" });
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      return sendJson(res, 405, {
        error: `method ${req.method ?? ""} not allowed: the admin server is read-only (GET, HEAD)`,
      });
    }
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, "") : url.pathname;
    switch (path) {
      case "/admin":
        return sendPage(res);
      case "/admin/events":
        return stream.open(req, res, COMMON_HEADERS);
      case "/admin/snapshot.json":
        return send(res, 200, JSON_TYPE, JSON.stringify(mesh.snapshot()));
      case "/admin/metrics":
        return send(res, 200, PROMETHEUS_CONTENT_TYPE, renderPrometheus(mesh.snapshot()));
      default:
        return sendJson(res, 404, { error: "not found", routes: ROUTES });
    }
  };

  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (error) {
      if (!res.headersSent) sendJson(res, 500, { error: error instanceof Error ? error.message : String(error) });
      else res.destroy();
    }
  });
  // A malformed request gets its socket closed, not an exception.
  server.on("clientError", (_error, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, () => {
      server.off("error", reject);
      resolve();
    });
  });

  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost(config.host)}:${port}/admin`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        stream.close();
        server.close(() => resolve());
        // Keep-alive sockets and ended streams: close() waits for them otherwise.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function sendPage(res: ServerResponse): void {
  const nonce = randomBytes(16).toString("base64");
  res.setHeader(
    "content-security-policy",
    `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  );
  res.setHeader("x-frame-options", "DENY");
  send(res, 200, "text/html; charset=utf-8", renderPage(nonce));
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, JSON_TYPE, JSON.stringify(body));
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { ...COMMON_HEADERS, "content-type": contentType, "content-length": Buffer.byteLength(body) });
  // HEAD: the same headers, no body (node:http drops a body written to a HEAD response).
  res.end(res.req.method === "HEAD" ? undefined : body);
}

/** The host part of the URL to print: IPv6 in brackets; a wildcard bind is reached through loopback. */
function urlHost(host: string): string {
  if (host === "0.0.0.0") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host.includes(":") ? `[${host}]` : host;
}

/**
 * Who may read the admin server.
 *
 * - **Bearer token** (optional): `Authorization: Bearer <token>` on every route, or `?token=` in
 *   the URL, because a browser cannot attach a header to the page it navigates to nor to an
 *   `EventSource`; the page forwards its own `?token=` to the stream. Both sides are hashed to
 *   SHA-256 before `crypto.timingSafeEqual`, so the comparison takes the same time whatever the
 *   length or the first wrong byte of a guess.
 * - **Host header** (always, when bound to loopback): a web page on another site can make the
 *   browser send requests to `127.0.0.1` through a DNS name it rebinds there; such a request carries
 *   that name in `Host`. Only loopback names (and the configured host) are served, as dev servers
 *   such as Vite and webpack-dev-server do for the same reason.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

/** A check of the bearer token; `undefined` token: everyone passes. */
export function tokenCheck(token: string | undefined): (req: IncomingMessage, url: URL) => boolean {
  if (token === undefined) return () => true;
  const expected = digest(token);
  return (req, url) => {
    const header = req.headers.authorization;
    const fromHeader = header === undefined ? undefined : BEARER.exec(header)?.[1];
    const given = fromHeader ?? url.searchParams.get("token");
    // Compare even when nothing was given, so a missing token costs as much as a wrong one.
    const matches = timingSafeEqual(digest(given ?? ""), expected);
    return matches && typeof given === "string";
  };
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/**
 * A check of the `Host` header against DNS rebinding. Bound to a loopback address: only loopback
 * names (`localhost`, `127.x.y.z`, `[::1]`) and the configured host pass. Bound elsewhere (told
 * so by the caller): every host passes, and the token is what protects the server.
 */
export function hostCheck(boundHost: string): (req: IncomingMessage) => boolean {
  if (!isLoopback(boundHost)) return () => true;
  const configured = boundHost.toLowerCase();
  return (req) => {
    const header = req.headers.host;
    // HTTP/1.0 clients may omit Host; a browser never does.
    if (header === undefined) return true;
    const name = hostnameOf(header);
    return name !== undefined && (isLoopback(name) || name === configured);
  };
}

/** True for `localhost`, `*.localhost`, 127.0.0.0/8 and ::1. */
export function isLoopback(host: string): boolean {
  const name = host.toLowerCase().replace(/^\[|\]$/g, "");
  if (name === "localhost" || name.endsWith(".localhost")) return true;
  if (isIP(name) === 4) return name.startsWith("127.");
  if (isIP(name) === 6) return name === "::1" || name === "0:0:0:0:0:0:0:1";
  return false;
}

/** The host name of a `Host` header value (`name`, `name:port`, `[v6]:port`), lower-cased. */
function hostnameOf(header: string): string | undefined {
  const value = header.trim().toLowerCase();
  if (value.startsWith("[")) {
    const end = value.indexOf("]");
    return end === -1 ? undefined : value.slice(1, end);
  }
  const colon = value.indexOf(":");
  return colon === -1 ? value : value.slice(0, colon);
}

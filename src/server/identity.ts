/**
 * The caller's workload identity: a SPIFFE ID (`spiffe://trust-domain/path`), from one of two
 * places, in this order:
 *
 * 1. **mTLS** — the URI SAN of the client certificate the TLS socket verified
 *    (`socket.authorized`): the form Linkerd and Istio give every workload. A certificate with no
 *    SPIFFE URI SAN, or with more than one (the SPIFFE X.509-SVID spec allows exactly one), is a
 *    malformed identity, not an anonymous caller.
 * 2. **A trusted proxy's header** — off unless configured, and read only when the connection
 *    comes from one of the listed proxy addresses (a sidecar, an ingress that terminated mTLS), so
 *    a caller cannot name itself by sending the header directly. Either a plain SPIFFE ID or
 *    Envoy's `x-forwarded-client-cert` (`By=…;Hash=…;URI=spiffe://…`, elements comma-separated,
 *    the last one added by the proxy nearest to us). From any other address the header is
 *    removed from the request, so the application cannot be fooled by it either.
 *
 * Pure functions and one reader; the authorization rules (`authz.ts`) take what this returns.
 */
import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";
import { parseSpiffeId, spiffeUrisOf, type SpiffeId } from "../security/spiffe.js";

export { parseSpiffeId, spiffeUrisOf, type SpiffeId };

export interface PeerIdentity extends SpiffeId {
  /** Where it came from: the verified client certificate, or a trusted proxy's header. */
  readonly source: "tls" | "header";
}

export type IdentityReading =
  | { readonly kind: "none" }
  | { readonly kind: "valid"; readonly identity: PeerIdentity }
  /** `reason` says what was wrong without repeating the value (which may carry certificate data). */
  | { readonly kind: "malformed"; readonly source: "tls" | "header"; readonly reason: string };

export interface HeaderIdentityConfig {
  /** Lower-case header name. */
  readonly header: string;
  /** `"xfcc"` for Envoy's x-forwarded-client-cert, `"spiffe"` for a bare SPIFFE ID. */
  readonly format: "xfcc" | "spiffe";
  /** Socket addresses the header is believed from (IPv4-mapped IPv6 forms are matched too). */
  readonly trustedProxies: ReadonlySet<string>;
}

const NONE: IdentityReading = Object.freeze({ kind: "none" });
/**
 * Header values seen, and what they read as: a caller behind a proxy sends the same few values
 * again and again, and parsing one costs more than the rest of the request's admission. Bounded:
 * emptied when full, so a flood of distinct values costs a parse each, never memory.
 */
const HEADER_CACHE_SIZE = 256;
/** The reading of a TLS socket's peer certificate, made once per connection (it cannot change). */
const tlsReadings = new WeakMap<object, IdentityReading>();

/**
 * The client's SPIFFE ID from Envoy's `x-forwarded-client-cert`: the `URI` field of the last
 * element (the one the proxy next to us added). Quoted values (`"…"`) are unquoted.
 */
export function uriFromXfcc(value: string): string | undefined {
  const elements = splitOutsideQuotes(value, ",");
  const last = elements[elements.length - 1];
  if (last === undefined) return undefined;
  for (const pair of splitOutsideQuotes(last, ";")) {
    const eq = pair.indexOf("=");
    if (eq === -1) continue;
    if (pair.slice(0, eq).trim().toLowerCase() !== "uri") continue;
    let uri = pair.slice(eq + 1).trim();
    if (uri.length >= 2 && uri.startsWith('"') && uri.endsWith('"')) uri = uri.slice(1, -1);
    return uri;
  }
  return undefined;
}

/**
 * Reads the peer identity of one inbound request (see the module comment for the order). With
 * `header` set, a header from an untrusted address is deleted from `req.headers`.
 */
export function readIdentity(
  req: IncomingMessage,
  header: HeaderIdentityConfig | null,
  cache?: Map<string, IdentityReading>,
): IdentityReading {
  const socket = req.socket as Partial<TLSSocket> | undefined;
  if (socket?.encrypted === true && socket.authorized === true && typeof socket.getPeerCertificate === "function") {
    let reading = tlsReadings.get(socket);
    if (reading === undefined) {
      reading = readCertificate(socket.getPeerCertificate());
      tlsReadings.set(socket, reading);
    }
    if (reading !== NONE) return reading;
  }
  if (header === null) return NONE;
  const raw = req.headers[header.header];
  if (raw === undefined) return NONE;
  if (!isTrusted(req.socket?.remoteAddress, header.trustedProxies)) {
    // Anyone can send a header: only a trusted proxy's counts, and nobody downstream may read a forged one.
    delete req.headers[header.header];
    return NONE;
  }
  if (Array.isArray(raw))
    return { kind: "malformed", source: "header", reason: `${header.header} was sent more than once` };
  let reading = cache?.get(raw);
  if (reading === undefined) {
    reading = readHeaderValue(raw, header);
    if (cache !== undefined) {
      if (cache.size >= HEADER_CACHE_SIZE) cache.clear();
      cache.set(raw, reading);
    }
  }
  return reading;
}

/** A verified peer certificate's reading; NONE when the socket has none. */
function readCertificate(certificate: ReturnType<TLSSocket["getPeerCertificate"]> | null): IdentityReading {
  if (certificate === null || typeof certificate !== "object" || Object.keys(certificate).length === 0) return NONE;
  const uris = spiffeUrisOf(certificate.subjectaltname);
  if (uris.length === 0) return malformed("tls", "the client certificate has no spiffe:// URI SAN");
  if (uris.length > 1)
    return malformed("tls", `the client certificate has ${uris.length} spiffe:// URI SANs (an SVID has exactly one)`);
  const parsed = parseSpiffeId(uris[0] as string);
  if (typeof parsed === "string") return malformed("tls", `the certificate's SPIFFE ID is invalid: ${parsed}`);
  return Object.freeze({ kind: "valid", identity: Object.freeze({ ...parsed, source: "tls" }) });
}

function readHeaderValue(raw: string, header: HeaderIdentityConfig): IdentityReading {
  const text = header.format === "xfcc" ? uriFromXfcc(raw) : raw.trim();
  if (text === undefined || text === "") return malformed("header", `${header.header} carries no URI`);
  const parsed = parseSpiffeId(text);
  if (typeof parsed === "string") return malformed("header", `the SPIFFE ID in ${header.header} is invalid: ${parsed}`);
  return Object.freeze({ kind: "valid", identity: Object.freeze({ ...parsed, source: "header" }) });
}

function malformed(source: "tls" | "header", reason: string): IdentityReading {
  return Object.freeze({ kind: "malformed", source, reason });
}

function isTrusted(address: string | undefined, trusted: ReadonlySet<string>): boolean {
  if (address === undefined) return false;
  if (trusted.has(address)) return true;
  // An IPv4 peer on a dual-stack socket shows as ::ffff:127.0.0.1.
  return address.startsWith("::ffff:") && trusted.has(address.slice(7));
}

/** Splits on `separator` where it is not inside double quotes (XFCC quotes values holding `,` or `;`). */
function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') quoted = !quoted;
    else if (c === "\\" && quoted) i++;
    else if (c === separator && !quoted) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim()).filter((p) => p !== "");
}

/**
 * SPIFFE IDs (`spiffe://trust-domain/path`): parsing by the SPIFFE-ID spec, reading them from an
 * X.509 certificate's URI SAN (the X.509-SVID form), and matching them against the patterns a
 * user writes — shared by `weft/server`'s identity and access rules and the client's check of
 * the identity a server presents. Pure functions; imports nothing but `core/`.
 */
import { fail } from "../core/validate.js";

export interface SpiffeId {
  /** The whole ID, `spiffe://example.org/ns/shop/sa/checkout`. */
  readonly id: string;
  readonly trustDomain: string;
  /** The path, `/ns/shop/sa/checkout` (may be empty). */
  readonly path: string;
}

const MAX_ID_BYTES = 2048;
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;
/** A whole valid path at once: segments of the allowed characters, none `.` or `..`. */
const VALID_PATH = /^(?:\/(?!\.\.?(?:\/|$))[A-Za-z0-9._-]+)+$/;

/**
 * Parses a SPIFFE ID by the SPIFFE-ID spec: scheme `spiffe`, a lower-case trust domain of
 * letters, digits, `.`, `-`, `_`; path segments of letters, digits, `.`, `-`, `_` (no empty, `.`
 * or `..` segment, no trailing `/`); no port, user info, query or fragment; at most 2048 bytes.
 * Returns the reason it is not one as a string.
 * @example parseSpiffeId("spiffe://example.org/ns/shop/sa/checkout")
 */
export function parseSpiffeId(text: string): SpiffeId | string {
  if (text.length > MAX_ID_BYTES) return `longer than ${MAX_ID_BYTES} bytes`;
  if (!text.startsWith("spiffe://")) return "not a spiffe:// URI";
  const rest = text.slice("spiffe://".length);
  const slash = rest.indexOf("/");
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? "" : rest.slice(slash);
  if (trustDomain === "") return "no trust domain";
  if (!TRUST_DOMAIN.test(trustDomain))
    return "the trust domain may hold only lower-case letters, digits, '.', '-' and '_'";
  if (path !== "" && !VALID_PATH.test(path)) {
    // Only on the way to a refusal: which rule it broke.
    const segments = path.slice(1).split("/");
    for (const segment of segments) {
      if (segment === "") return "an empty path segment";
      if (segment === "." || segment === "..") return "a '.' or '..' path segment";
      if (!SEGMENT.test(segment)) return "a path segment may hold only letters, digits, '.', '-' and '_'";
    }
  }
  return Object.freeze({ id: text, trustDomain, path });
}

/** The SPIFFE IDs in an X.509 `subjectaltname` string (`"URI:spiffe://…, DNS:…"`). */
export function spiffeUrisOf(subjectAltName: string | undefined): string[] {
  if (subjectAltName === undefined || subjectAltName === "") return [];
  const uris: string[] = [];
  for (const part of subjectAltName.split(/,\s*/)) {
    if (part.startsWith("URI:spiffe://")) uris.push(part.slice(4));
  }
  return uris;
}

/**
 * One matcher for a list of identity patterns (authz rules' `from`, a client's expected server
 * identity): exact IDs in a set, `…/*` prefixes in a list, `"*"` for any valid SPIFFE ID. Fails
 * naming `option` for anything else.
 */
export function identityMatcher(patterns: readonly unknown[], option: string): (id: string) => boolean {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  let anyone = false;
  patterns.forEach((pattern, j) => {
    const at = `${option}[${j}]`;
    const allowed =
      'a SPIFFE ID ("spiffe://example.org/ns/shop/sa/web"), a pattern ending in "/*" ("spiffe://example.org/*"), or "*" (any verified identity)';
    if (typeof pattern !== "string") fail(at, pattern, allowed);
    if (pattern === "*") {
      anyone = true;
      return;
    }
    const wildcard = pattern.endsWith("/*");
    const base = wildcard ? pattern.slice(0, -2) : pattern;
    const parsed = parseSpiffeId(base);
    if (typeof parsed === "string") fail(at, pattern, `${allowed} (${parsed})`);
    if (wildcard) prefixes.push(base + "/");
    else exact.add(pattern);
  });
  return (id) => anyone || exact.has(id) || prefixes.some((p) => id.startsWith(p));
}

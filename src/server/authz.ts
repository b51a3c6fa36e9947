/**
 * Access control per route, in the shape of Istio's AuthorizationPolicy (ALLOW rules) and
 * Linkerd's Server authorization: once any rule exists, a request is **denied unless a rule
 * allows it** (default deny). A rule names the paths and methods it covers and the identities it
 * lets in; a rule with no `from` is public (anyone, even without an identity — a login page, a
 * webhook).
 *
 * The decision, for the rules that cover the request's path and method:
 * - none covers it → `deny` (403): nothing allows this route;
 * - one of them is public → `allow`;
 * - the caller's identity is malformed → `malformed` (401): a credential was presented and could
 *   not be read, which is never mistaken for "anonymous";
 * - there is no identity → `unauthenticated` (401);
 * - one of them lists the identity → `allow`; otherwise → `deny` (403).
 *
 * Identity patterns: an exact SPIFFE ID; `spiffe://trust.domain/*` (the whole trust domain) or
 * `spiffe://trust.domain/ns/shop/*` (everything under a path); `"*"` (any verified identity).
 * Rules are compiled once; a decision reads no clock and allocates nothing on the allow path.
 */
import { compilePathPattern, type PathPattern } from "../core/path-pattern.js";
import { checkKeys, fail, isPlainObject } from "../core/validate.js";
import { identityMatcher } from "../security/spiffe.js";
import type { IdentityReading } from "./identity.js";

export interface AuthzRule {
  /** Path patterns the rule covers (`"/admin/*"`, `"/v1/items/:id"`, `"*"`). Default: every path. */
  readonly paths?: readonly string[];
  /** Methods the rule covers (upper case). Default: every method. */
  readonly methods?: readonly string[];
  /**
   * Identities let in: SPIFFE IDs, `spiffe://domain/*` or `spiffe://domain/path/*` patterns, or
   * `"*"` for any verified identity. Omitted: public — anyone, with or without an identity.
   */
  readonly from?: readonly string[];
}

export interface AuthzOptions {
  readonly rules: readonly AuthzRule[];
}

export type AuthzDecision = "allow" | "deny" | "unauthenticated" | "malformed";

export interface AuthzResult {
  readonly decision: AuthzDecision;
  /** 200 for allow (the handler answers), 401 or 403 otherwise. */
  readonly status: number;
  /** Why, in words safe to send and log (never a credential's value). */
  readonly reason: string;
}

interface CompiledRule {
  readonly paths: readonly PathPattern[] | null;
  readonly methods: ReadonlySet<string> | null;
  /** null: public. */
  readonly from: ((id: string) => boolean) | null;
}

const ALLOW: AuthzResult = Object.freeze({ decision: "allow", status: 200, reason: "allowed" });

export class Authorizer {
  readonly #rules: readonly CompiledRule[];

  constructor(options: unknown, option = "authz") {
    if (!isPlainObject(options)) fail(option, options, "{ rules: [{ paths?, methods?, from? }, ...] } or false (off)");
    checkKeys(options, ["rules"], option);
    if (!Array.isArray(options.rules) || options.rules.length === 0) {
      fail(
        `${option}.rules`,
        options.rules,
        "a non-empty array of rules { paths?, methods?, from? } (to allow everything, leave authz off)",
      );
    }
    this.#rules = Object.freeze(options.rules.map((rule, i) => compileRule(rule, `${option}.rules[${i}]`)));
  }

  /** The decision for one request (`path` without its query). */
  decide(method: string, path: string, identity: IdentityReading): AuthzResult {
    let covered = false;
    let needsIdentity = false;
    for (const rule of this.#rules) {
      if (rule.methods !== null && !rule.methods.has(method)) continue;
      if (rule.paths !== null && !rule.paths.some((p) => p.matches(path))) continue;
      covered = true;
      if (rule.from === null) return ALLOW;
      needsIdentity = true;
    }
    if (!covered) return { decision: "deny", status: 403, reason: `no rule allows ${method} ${path}` };
    if (needsIdentity && identity.kind === "malformed")
      return {
        decision: "malformed",
        status: 401,
        reason: `malformed peer identity (${identity.source}): ${identity.reason}`,
      };
    if (identity.kind !== "valid")
      return {
        decision: "unauthenticated",
        status: 401,
        reason: `${method} ${path} requires a peer identity and none was presented`,
      };
    const id = identity.identity.id;
    for (const rule of this.#rules) {
      if (rule.methods !== null && !rule.methods.has(method)) continue;
      if (rule.paths !== null && !rule.paths.some((p) => p.matches(path))) continue;
      if (rule.from !== null && rule.from(id)) return ALLOW;
    }
    return { decision: "deny", status: 403, reason: `${id} is not allowed to ${method} ${path}` };
  }
}

function compileRule(rule: unknown, option: string): CompiledRule {
  if (!isPlainObject(rule)) fail(option, rule, "a rule { paths?, methods?, from? }");
  checkKeys(rule, ["paths", "methods", "from"], option);
  const paths =
    rule.paths === undefined
      ? null
      : listOf(rule.paths, `${option}.paths`).map((p, j) => compilePathPattern(p, `${option}.paths[${j}]`));
  const methods =
    rule.methods === undefined
      ? null
      : new Set(
          listOf(rule.methods, `${option}.methods`).map((m, j) => {
            if (typeof m !== "string" || !/^[A-Z]+$/.test(m))
              fail(`${option}.methods[${j}]`, m, 'an upper-case HTTP method such as "GET"');
            return m;
          }),
        );
  const from = rule.from === undefined ? null : identityMatcher(listOf(rule.from, `${option}.from`), `${option}.from`);
  return { paths, methods, from };
}

function listOf(value: unknown, option: string): unknown[] {
  if (!Array.isArray(value) || value.length === 0) fail(option, value, "a non-empty array");
  return value;
}

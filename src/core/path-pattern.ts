/**
 * Path patterns, compiled once: the matcher behind `weft/server`'s authorization rules and
 * priorities (and, in its issue, client routes). Four forms, as Istio's and Linkerd's policies
 * write them:
 *
 * - `"*"` — every path;
 * - `"/v1/items"` — exactly that path;
 * - `"/admin/*"` — the prefix itself and everything under it (`/admin`, `/admin/`, `/admin/users/7`);
 * - `"/v1/items/:id"` — a template: `:name` stands for one non-empty segment.
 *
 * Matching takes the path without its query string. A pattern's `label` is the pattern itself:
 * bounded cardinality, safe as a metric attribute where the raw path is not.
 */
import { fail } from "./validate.js";

export interface PathPattern {
  /** The pattern as written: a bounded label for metrics and logs. */
  readonly label: string;
  matches(path: string): boolean;
}

const PARAM = /^:[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Compiles a pattern, or fails naming `option` and the forms allowed.
 * @example compilePathPattern("/v1/items/:id", "authz.rules[0].paths[0]").matches("/v1/items/42") // true
 */
export function compilePathPattern(pattern: unknown, option: string): PathPattern {
  const allowed = '"*", an exact path ("/v1/items"), a prefix ("/admin/*") or a template ("/v1/items/:id")';
  if (typeof pattern !== "string" || pattern === "") fail(option, pattern, allowed);
  if (pattern === "*") return { label: pattern, matches: () => true };
  if (!pattern.startsWith("/") || pattern.includes("?") || pattern.includes("#")) fail(option, pattern, allowed);
  if (pattern.endsWith("/*")) {
    const prefix = pattern.slice(0, -2);
    if (prefix.includes("*")) fail(option, pattern, `${allowed}; "*" only as the last segment`);
    const under = prefix + "/";
    return {
      label: pattern,
      matches: (path) => path === prefix || path.startsWith(under) || (prefix === "" && path.startsWith("/")),
    };
  }
  if (pattern.includes("*")) fail(option, pattern, `${allowed}; "*" only as the last segment`);
  const segments = pattern.split("/");
  if (!segments.some((s) => s.startsWith(":"))) return { label: pattern, matches: (path) => path === pattern };
  for (const segment of segments)
    if (segment.startsWith(":") && !PARAM.test(segment))
      fail(option, pattern, `${allowed}; a parameter is ":" and a name`);
  // The literal part before the first parameter ("/v1/items/" of "/v1/items/:id/parts"): most
  // paths a template does not take differ there, and one startsWith turns them away. The walk
  // then covers only the segments after it; which of them are parameters is decided here, once.
  const first = segments.findIndex((s) => s.startsWith(":"));
  const literal = segments.slice(0, first).join("/") + "/";
  const rest = segments.slice(first).map((s) => (s.startsWith(":") ? null : s));
  const last = rest.length - 1;
  return {
    label: pattern,
    // Walked with indexOf, not split: this runs for every request a rule or route is checked against.
    matches: (path) => {
      if (!path.startsWith(literal)) return false;
      let from = literal.length;
      for (let i = 0; i <= last; i++) {
        const slash = path.indexOf("/", from);
        if (i < last ? slash === -1 : slash !== -1) return false;
        const end = i < last ? slash : path.length;
        const want = rest[i] as string | null;
        if (want === null ? end === from : end - from !== want.length || !path.startsWith(want, from)) return false;
        from = end + 1;
      }
      return true;
    },
  };
}

/** The path without its query string. */
export function pathOnly(url: string): string {
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}

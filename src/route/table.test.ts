import { describe, expect, it } from "vitest";
import { seededRandom } from "../core/clock.js";
import { pathOnly } from "../core/path-pattern.js";
import { newRequest } from "../core/request.js";
import type { MeshRequest } from "../core/types.js";
import { normalizeRoutes, type PolicyNormalizer, type RouteConfig } from "./options.js";
import { cookieValue, RouteTable } from "./table.js";

const NO_POLICY: PolicyNormalizer = () => ({ timeout: null, overrides: null });

function table(routes: unknown[]): RouteTable {
  const configs = normalizeRoutes(routes, "routes", "self", NO_POLICY);
  const fallback: RouteConfig = normalizeRoutes([{ name: "fallback" }], "f", "self", NO_POLICY)[0]!;
  return new RouteTable("code", "code", 0, configs, fallback, { timeout: null, overrides: null });
}

/** The first route that takes `req`, tried one by one: what the index must agree with. */
function linear(t: RouteTable, req: MeshRequest): string {
  const path = pathOnly(req.path);
  return t.routes.find((r) => r.matches(req, path))?.name ?? t.fallback.name;
}

describe("route table", () => {
  it("picks the same route with its segment index as trying every route in order (20,000 random requests)", () => {
    const routes = [
      { name: "items-get", match: { method: "GET", path: "/v1/items/:id" } },
      { name: "items-any", match: { path: "/v1/items/:id" } },
      { name: "item-parts", match: { path: "/v1/items/:id/parts" } },
      { name: "v1-admin", match: { path: "/v1/admin/*" } },
      { name: "exact", match: { path: "/v1/items" } },
      { name: "canary", match: { headers: { "x-canary": "1" } } },
      { name: "v2-prefix", match: { path: { prefix: "/v2" } } },
      { name: "regex", match: { path: { regex: "^/v[34]/items/[0-9]+$" } } },
      { name: "param-first", match: { path: "/:tenant/items" } },
      { name: "deep", match: { path: "/v1/a/b/c/:d" } },
      { name: "v1-all", match: { method: ["POST", "PUT"], path: "/v1/*" } },
      { name: "root", match: { path: "/" } },
      { name: "query", match: { path: "/search", query: { q: { present: true } } } },
      { name: "reviews", match: { path: "/v1/items/:id/reviews" } },
      { name: "tenant-item", match: { method: "GET", path: "/:tenant/items/:id" } },
      { name: "two-params", match: { path: "/:a/:b" } },
      { name: "trailing", match: { path: "/v1/" } },
      { name: "prefix-param", match: { path: "/v1/:x/*" } },
      { name: "late-catch", match: { method: "DELETE" } },
      { name: "v2-under", match: { path: "/v2/*" } },
    ];
    const t = table(routes);
    const random = seededRandom(5);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
    const words = [
      "v1",
      "v2",
      "v3",
      "v4",
      "items",
      "admin",
      "a",
      "b",
      "c",
      "d",
      "42",
      "x",
      "parts",
      "reviews",
      "search",
      "",
      "acme",
      ":x",
    ];
    const seen = new Set<string>();
    // Half the paths are made from a route's own pattern (its parameters and "*" filled at random),
    // so every route is reached; the other half are random segments.
    const patterns = routes.flatMap((r) => {
      const path = (r.match as { path?: unknown }).path;
      return typeof path === "string" ? [path] : [];
    });
    const fill = (pattern: string): string =>
      pattern
        .split("/")
        .map((segment) =>
          segment.startsWith(":")
            ? pick(words)
            : segment === "*"
              ? [pick(words), pick(words)].slice(0, 1 + Math.floor(random() * 2)).join("/")
              : segment,
        )
        .join("/");
    for (let i = 0; i < 20_000; i++) {
      let path = "";
      if (random() < 0.5) path = fill(pick(patterns));
      else {
        const depth = 1 + Math.floor(random() * 5);
        for (let d = 0; d < depth; d++) path += `/${pick(words)}`;
      }
      if (random() < 0.2) path += `?q=${pick(words)}`;
      const req = newRequest({
        method: pick(["GET", "POST", "PUT", "DELETE"]),
        path,
        headers: random() < 0.1 ? { "x-canary": "1" } : {},
      });
      const got = t.match(req).name;
      expect(got, `${req.method} ${path}`).toBe(linear(t, req));
      seen.add(got);
    }
    // The requests reached most routes: the comparison covered them.
    // Every route was the first match of some request, but "v2-under": "v2-prefix" above it takes
    // all its paths (first match wins), and the index must not let it through either.
    expect([...routes.map((r) => r.name), t.fallback.name].filter((n) => !seen.has(n))).toEqual(["v2-under"]);
  });

  it("splits by weight at random, and by a sticky key's hash to the same backend every time", () => {
    const t = table([
      {
        sticky: { cookie: "session" },
        backends: [
          { subset: { version: "v1" }, weight: 3 },
          { subset: { version: "v2" }, weight: 1 },
          { subset: { version: "v3" }, weight: 0 },
        ],
      },
    ]);
    const route = t.routes[0]!;
    const random = seededRandom(9);
    const counts = new Map<string, number>();
    for (let i = 0; i < 10_000; i++) {
      const b = route.pick(newRequest({ path: "/" }), random).config.label;
      counts.set(b, (counts.get(b) ?? 0) + 1);
    }
    expect(Math.abs((counts.get("version=v1") ?? 0) / 10_000 - 0.75)).toBeLessThan(0.02);
    expect(counts.get("version=v3")).toBeUndefined();
    const withCookie = (v: string): MeshRequest =>
      newRequest({ path: "/", headers: { cookie: `theme=dark; session=${v}; x=1` } });
    for (let user = 0; user < 200; user++) {
      const first = route.pick(withCookie(`u${user}`), random).config.label;
      for (let again = 0; again < 5; again++)
        expect(route.pick(withCookie(`u${user}`), random).config.label).toBe(first);
    }
  });

  it("reads a cookie by name from a Cookie header", () => {
    expect(cookieValue("a=1; session=abc; b=2", "session")).toBe("abc");
    expect(cookieValue("sessionx=1; session=2", "session")).toBe("2");
    expect(cookieValue("a=1", "session")).toBeUndefined();
    expect(cookieValue(undefined, "session")).toBeUndefined();
  });
});

describe("route options", () => {
  const invalid = (routes: unknown): string => {
    try {
      normalizeRoutes(routes, "routes", "self", NO_POLICY);
    } catch (error) {
      return (error as Error).message;
    }
    throw new Error("expected an InvalidOptionsError");
  };

  it("names the path of every bad value and what is allowed", () => {
    expect(invalid({})).toMatch(/^invalid option routes: got \{\}; expected an array of routes/);
    expect(invalid([{ match: { path: "items" } }])).toMatch(/^invalid option routes\[0\]\.match\.path: got "items"/);
    expect(invalid([{ match: { path: { regex: "(" } } }])).toMatch(
      /^invalid option routes\[0\]\.match\.path\.regex: got "\("; expected a valid regular expression/,
    );
    expect(invalid([{ match: { method: ["GET", 7] } }])).toMatch(/routes\[0\]\.match\.method\[1\]: got 7/);
    expect(invalid([{ match: { headers: { "x-a": { exact: "1", prefix: "2" } } } }])).toMatch(
      /routes\[0\]\.match\.headers\.x-a: got .*\(one of them\)/,
    );
    expect(invalid([{}, { backends: [{ weight: 0 }] }])).toMatch(
      /routes\[1\]\.backends: .*expected at least one backend with a weight above 0/,
    );
    expect(invalid([{ backends: [{ subset: { version: 2 } }] }])).toMatch(/routes\[0\]\.backends\[0\]\.subset: got/);
    expect(invalid([{ backends: [{ subset: { v: "1" } }, { subset: { v: "1" } }] }])).toMatch(
      /routes\[0\]\.backends\[1\]: .*v=1 is/,
    );
    expect(invalid([{ sticky: { header: "x-user" } }])).toMatch(
      /routes\[0\]\.sticky: .*expected a route with at least two backends/,
    );
    expect(invalid([{ mirror: { percent: 10 } }])).toMatch(/routes\[0\]\.mirror: .*expected a mirror target/);
    expect(invalid([{ mirror: { percent: 101, service: "x" } }])).toMatch(
      /routes\[0\]\.mirror\.percent: got 101; expected a percentage from 0 to 100/,
    );
    expect(invalid([{ fault: { abort: { percent: 5 } } }])).toMatch(/routes\[0\]\.fault\.abort: .*one of them/);
    expect(invalid([{ fault: { delay: { percent: 5, ms: -1 } } }])).toMatch(/routes\[0\]\.fault\.delay\.ms: got -1/);
    expect(invalid([{ fualt: {} }])).toMatch(/unknown option routes\[0\]\.fualt \(did you mean routes\[0\]\.fault\?\)/);
  });

  it('keeps route names unique: a given name twice or "default" is refused, a generated one repeated gets #2', () => {
    expect(invalid([{ name: "a" }, { name: "a", match: { path: "/x" } }])).toMatch(
      /routes\[1\]\.name: got "a"; expected a name no other route has/,
    );
    expect(invalid([{ name: "default" }])).toMatch(
      /routes\[0\]\.name: got "default"; expected a name other than "default"/,
    );
    const names = normalizeRoutes(
      [{ match: { headers: { a: "1" } } }, { match: { headers: { b: "1" } } }, { match: { headers: { c: "1" } } }],
      "routes",
      "self",
      NO_POLICY,
    ).map((r) => r.name);
    expect(names).toEqual(["(by header)", "(by header) #2", "(by header) #3"]);
  });

  it("names a route by its method and pattern when it has no name, never by a raw path", () => {
    const [a, b, c, d] = normalizeRoutes(
      [
        { match: { method: "GET", path: "/v1/items/:id" } },
        { match: { path: { prefix: "/v2" } } },
        { match: { headers: { "x-canary": "1" } } },
        {},
      ],
      "routes",
      "self",
      NO_POLICY,
    );
    expect([a!.name, b!.name, c!.name, d!.name]).toEqual(["GET /v1/items/:id", "/v2…", "(by header)", "*"]);
  });

  it("treats a backend naming the client's own service as its own endpoints", () => {
    const [route] = normalizeRoutes(
      [
        {
          backends: [
            { service: "self", weight: 1 },
            { service: "other", weight: 1 },
          ],
        },
      ],
      "routes",
      "self",
      NO_POLICY,
    );
    expect(route!.backends.map((b) => [b.label, b.service])).toEqual([
      ["self", null],
      ["service:other", "other"],
    ]);
  });
});

import { describe, expect, it } from "vitest";
import { seededRandom } from "./clock.js";
import { compilePathPattern, pathOnly } from "./path-pattern.js";
import { invalidOption } from "../../test/helpers/options.js";

describe("compilePathPattern", () => {
  it("matches every path with *", () => {
    const p = compilePathPattern("*", "p");
    expect(["/", "/a/b", "/x?y"].every((path) => p.matches(path))).toBe(true);
  });

  it("matches an exact path only", () => {
    const p = compilePathPattern("/v1/items", "p");
    expect(p.matches("/v1/items")).toBe(true);
    expect(p.matches("/v1/items/")).toBe(false);
    expect(p.matches("/v1/items/7")).toBe(false);
  });

  it("matches a prefix itself and everything under it, not a longer sibling", () => {
    const p = compilePathPattern("/admin/*", "p");
    expect(p.matches("/admin")).toBe(true);
    expect(p.matches("/admin/")).toBe(true);
    expect(p.matches("/admin/users/7")).toBe(true);
    expect(p.matches("/administrator")).toBe(false);
    expect(compilePathPattern("/*", "p").matches("/anything")).toBe(true);
  });

  it("matches a template segment by segment, a parameter standing for one non-empty segment", () => {
    const p = compilePathPattern("/v1/items/:id/reviews", "p");
    expect(p.matches("/v1/items/42/reviews")).toBe(true);
    expect(p.matches("/v1/items//reviews")).toBe(false);
    expect(p.matches("/v1/items/42/43/reviews")).toBe(false);
    expect(p.label).toBe("/v1/items/:id/reviews");
    for (const miss of [
      "/v1/items/42/reviews/",
      "/v1/items/42/review",
      "/v1/items/42/reviewsX",
      "/v1/itemsX/42/reviews",
      "/v1/item/42/reviews",
      "v1/items/42/reviews",
      "/v1/items/42",
      "",
    ]) {
      expect(p.matches(miss), miss).toBe(false);
    }
    const last = compilePathPattern("/v1/items/:id", "p");
    expect(last.matches("/v1/items/42")).toBe(true);
    for (const miss of ["/v1/items/", "/v1/items", "/v1/items/42/", "/v1/items/42/x", "/v2/items/42"])
      expect(last.matches(miss), miss).toBe(false);
  });

  it("agrees with a regular expression built from the template on 20,000 random paths", () => {
    const random = seededRandom(3);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
    const words = ["a", "b", "v1", "items", ":id", "42", ""];
    const templates = ["/:t", "/a/:id", "/:x/b", "/v1/items/:id/b", "/:a/:b", "/a/:id/:id2/b", "/v1/:id/"];
    for (let i = 0; i < 20_000; i++) {
      const template = pick(templates);
      const depth = 1 + Math.floor(random() * 5);
      let path = "";
      for (let d = 0; d < depth; d++) path += `/${pick(words)}`;
      const reference = new RegExp(`^${template.replace(/:[A-Za-z_][A-Za-z0-9_]*/g, "[^/]+")}$`);
      expect(compilePathPattern(template, "p").matches(path), `${template} ${path}`).toBe(reference.test(path));
    }
  });

  it("refuses what is not a pattern, naming the option", () => {
    for (const bad of ["", "v1/items", "/a/*/b", "/a*", "/a?b=1", "/v1/:", 7]) {
      expect(invalidOption(() => compilePathPattern(bad, "authz.rules[0].paths[0]"))).toBe("authz.rules[0].paths[0]");
    }
  });
});

describe("pathOnly", () => {
  it("drops the query string", () => {
    expect(pathOnly("/a/b?x=1&y=2")).toBe("/a/b");
    expect(pathOnly("/a")).toBe("/a");
  });
});

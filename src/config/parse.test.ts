import { describe, expect, it } from "vitest";
import { parseConfigText } from "./parse.js";

const parse = (text: string): unknown => parseConfigText(text, "catalog.yaml");

describe("parseConfigText", () => {
  it("reads JSON", () => {
    expect(parse('{ "timeout": { "totalMs": 2000 }, "routes": [{ "path": "/v1/*", "weight": 0.5 }] }')).toEqual({
      timeout: { totalMs: 2000 },
      routes: [{ path: "/v1/*", weight: 0.5 }],
    });
  });

  it("reads YAML 1.2: `no` and `on` are strings, not booleans", () => {
    const text = ["# catalog overrides", "retry:", "  maxAttempts: 3", "  enabled: true", "country: no", "mode: on"];
    expect(parse(text.join("\n"))).toEqual({
      retry: { maxAttempts: 3, enabled: true },
      country: "no",
      mode: "on",
    });
  });

  it("reads an empty text, or one of comments only, as {} (no overrides)", () => {
    expect(parse("")).toEqual({});
    expect(parse("\n  \n")).toEqual({});
    expect(parse("# nothing yet\n")).toEqual({});
  });

  it("leaves the shape to the client: a list or a scalar is returned as it is", () => {
    expect(parse("[1, 2]")).toEqual([1, 2]);
    expect(parse("null")).toBeNull();
  });

  it("names where and the line and column of a syntax error", () => {
    expect(() => parse("retry:\n  maxAttempts: 3\n  budget: x: y\n")).toThrow(
      "catalog.yaml does not parse: Nested mappings are not allowed in compact mappings at line 3, column 11",
    );
    expect(() => parse("retry:\n  maxAttempts: 3\n budget: 2\n")).toThrow(
      "catalog.yaml does not parse: All mapping items must start at the same column at line 3, column 1",
    );
    expect(() => parseConfigText('{ "a": 1,\n  "b": [1, 2 }', "rev 7")).toThrow(
      /^rev 7 does not parse: .*end with a \] at line 2, column 14$/,
    );
    expect(() => parse("a:\n\t- 1\n")).toThrow(/Tabs are not allowed as indentation at line 2, column 1/);
  });

  it("rejects a duplicate key, in YAML and in JSON, where the second one is", () => {
    expect(() => parse("retry: 1\ntimeout: 2\nretry: 3\n")).toThrow(
      "catalog.yaml does not parse: Map keys must be unique at line 3, column 1",
    );
    expect(() => parse('{"a": {"b": 1,\n "b": 2}}')).toThrow(/Map keys must be unique at line 2, column 2/);
  });

  it("rejects a key that is not a string, where it is", () => {
    expect(() => parse("a: 1\n1: x\n")).toThrow(
      "catalog.yaml does not parse: the key 1 is not a string at line 2, column 1",
    );
    expect(() => parse("routes:\n  - true: x\n")).toThrow(/the key true is not a string at line 2, column 5/);
    expect(() => parse("~: x\n")).toThrow(/the key null is not a string at line 1, column 1/);
    expect(() => parse("? [a, b]\n: 1\n")).toThrow(/the key \(a sequence\) is not a string at line 1, column 3/);
  });

  it("rejects more than one document", () => {
    expect(() => parse("a: 1\n---\nb: 2\n")).toThrow(/more than one document .* at line 2, column 1/);
  });

  it("keeps YAML 1.1 types out: a document holds only what JSON can", () => {
    expect(parse("a: !!binary aGk=\nb: 2001-12-14\n")).toEqual({ a: "aGk=", b: "2001-12-14" });
  });

  it("keeps __proto__ an ordinary key", () => {
    const document = parse("__proto__: { polluted: true }\n") as Record<string, unknown>;
    expect(Object.getPrototypeOf(document)).toBe(Object.prototype);
    expect(Object.keys(document)).toEqual(["__proto__"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

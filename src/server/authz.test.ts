import { describe, expect, it } from "vitest";
import { Authorizer } from "./authz.js";
import type { IdentityReading } from "./identity.js";
import { invalidOption } from "../../test/helpers/options.js";

const id = (text: string): IdentityReading => {
  const [, domain = "", path = ""] = /^spiffe:\/\/([^/]+)(.*)$/.exec(text) ?? [];
  return { kind: "valid", identity: { id: text, trustDomain: domain, path, source: "tls" } };
};
const NONE: IdentityReading = { kind: "none" };
const MALFORMED: IdentityReading = {
  kind: "malformed",
  source: "header",
  reason: "the SPIFFE ID in x-weft-peer-identity is invalid: no trust domain",
};

const authz = new Authorizer({
  rules: [
    { paths: ["/public", "/login"] },
    { paths: ["/v1/items/:id"], methods: ["GET"], from: ["*"] },
    { paths: ["/v1/items/:id"], methods: ["PUT", "DELETE"], from: ["spiffe://example.org/ns/shop/sa/catalog-admin"] },
    { paths: ["/admin/*"], from: ["spiffe://example.org/ns/ops/*"] },
    { paths: ["/partners/*"], from: ["spiffe://partner.example/*"] },
  ],
});

describe("Authorizer", () => {
  it("allows a public route to anyone, even without or with a broken identity", () => {
    for (const reading of [NONE, MALFORMED, id("spiffe://example.org/sa/web")])
      expect(authz.decide("POST", "/login", reading).decision).toBe("allow");
  });

  it("allows a listed identity, exact, by prefix, by trust domain or any", () => {
    expect(authz.decide("GET", "/v1/items/7", id("spiffe://other.org/sa/x")).decision).toBe("allow");
    expect(authz.decide("PUT", "/v1/items/7", id("spiffe://example.org/ns/shop/sa/catalog-admin")).decision).toBe(
      "allow",
    );
    expect(authz.decide("GET", "/admin/users", id("spiffe://example.org/ns/ops/sa/oncall")).decision).toBe("allow");
    expect(authz.decide("GET", "/partners/feed", id("spiffe://partner.example/billing")).decision).toBe("allow");
  });

  it("denies an identity no rule of the route lists, with 403 and a reason naming it", () => {
    const result = authz.decide("DELETE", "/v1/items/7", id("spiffe://example.org/ns/shop/sa/web"));
    expect(result).toEqual({
      decision: "deny",
      status: 403,
      reason: "spiffe://example.org/ns/shop/sa/web is not allowed to DELETE /v1/items/7",
    });
    // A prefix pattern does not leak to a sibling path.
    expect(authz.decide("GET", "/admin/x", id("spiffe://example.org/ns/opsx/sa/y")).decision).toBe("deny");
  });

  it("denies by default what no rule covers", () => {
    expect(authz.decide("GET", "/v2/secret", id("spiffe://example.org/ns/ops/sa/oncall"))).toMatchObject({
      decision: "deny",
      status: 403,
      reason: "no rule allows GET /v2/secret",
    });
    expect(authz.decide("POST", "/v1/items/7", id("spiffe://example.org/ns/ops/sa/oncall")).decision).toBe("deny");
  });

  it("answers 401 when the route needs an identity and none came", () => {
    expect(authz.decide("GET", "/v1/items/7", NONE)).toMatchObject({ decision: "unauthenticated", status: 401 });
  });

  it("answers 401 malformed, never anonymous, when the identity could not be read", () => {
    const result = authz.decide("GET", "/admin/users", MALFORMED);
    expect(result).toMatchObject({ decision: "malformed", status: 401 });
    expect(result.reason).toMatch(/malformed peer identity \(header\)/);
  });

  it("refuses invalid rules at construction, naming the option", () => {
    expect(invalidOption(() => new Authorizer({ rules: [] }))).toBe("authz.rules");
    expect(invalidOption(() => new Authorizer({ rules: [{ paths: ["admin"] }] }))).toBe("authz.rules[0].paths[0]");
    expect(invalidOption(() => new Authorizer({ rules: [{ methods: ["get"] }] }))).toBe("authz.rules[0].methods[0]");
    expect(invalidOption(() => new Authorizer({ rules: [{ from: ["spiffe://Bad/x"] }] }))).toBe(
      "authz.rules[0].from[0]",
    );
    expect(invalidOption(() => new Authorizer({ rules: [{ from: [] }] }))).toBe("authz.rules[0].from");
    expect(invalidOption(() => new Authorizer({ rules: [{ path: ["/x"] }] }))).toBe("authz.rules[0].path");
  });
});

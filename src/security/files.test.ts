/**
 * TLS material checks and the watched files: what is refused and why, that the last good
 * material keeps serving, and the expiry warnings (on the injected clock). Certificates made
 * with the real openssl.
 */
import { X509Certificate } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fakeClock } from "../testing/index.js";
import { hasOpenssl, makePki, type Pem, type TestPki } from "../../test/helpers/certs.js";
import { tlsFiles } from "./files.js";
import { checkMaterial, tlsMaterial } from "./material.js";

describe.skipIf(!hasOpenssl)("TLS material", () => {
  let pki: TestPki;
  let web: Pem;
  let expired: Pem;
  beforeAll(() => {
    pki = makePki();
    web = pki.client("web", "URI:spiffe://example.org/ns/shop/sa/web");
    expired = pki.issue("old", { sans: "URI:spiffe://example.org/ns/shop/sa/old", usage: "client", expired: true });
  });
  afterAll(() => pki.close());

  it("reads a valid pair and bundle: identity, serial, validity", () => {
    const now = Date.now();
    const m = checkMaterial({ ...web, ca: pki.ca }, 1, now);
    const x509 = new X509Certificate(web.cert);
    expect(m).toMatchObject({
      version: 1,
      identity: "spiffe://example.org/ns/shop/sa/web",
      serial: x509.serialNumber,
      caCount: 1,
      notAfter: Date.parse(x509.validTo),
    });
    expect(Object.isFrozen(m)).toBe(true);
    expect(checkMaterial({ ca: pki.ca }, 1, now)).toMatchObject({ cert: undefined, identity: null, caCount: 1 });
  });

  it("refuses half-written, mismatched, expired, not-yet-valid and lone material, saying why", () => {
    const now = Date.now();
    const refusal = (f: () => unknown): string => {
      try {
        f();
      } catch (error) {
        return (error as Error).message;
      }
      return "accepted";
    };
    expect(refusal(() => checkMaterial({ cert: web.cert.slice(0, 200), key: web.key }, 2, now))).toMatch(
      /no complete PEM block/,
    );
    expect(refusal(() => checkMaterial({ cert: web.cert + "-----BEGIN CERT", key: web.key }, 2, now))).toMatch(
      /text outside its PEM blocks/,
    );
    expect(refusal(() => checkMaterial({ cert: web.cert, key: pki.server.key }, 2, now))).toMatch(
      /the key is not the certificate's .*mismatched pair/,
    );
    expect(
      refusal(() =>
        checkMaterial({ cert: web.cert, key: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----" }, 2, now),
      ),
    ).toMatch(/the key does not parse/);
    expect(refusal(() => checkMaterial({ ...expired }, 2, now))).toMatch(/expired at 2020-01-02T00:00:00.000Z/);
    // Issued a moment ago by a clock a little ahead of ours: accepted within a minute's skew, not beyond.
    const notBefore = Date.parse(new X509Certificate(web.cert).validFrom);
    expect(refusal(() => checkMaterial({ ...web }, 2, notBefore - 30_000))).toBe("accepted");
    expect(refusal(() => checkMaterial({ ...web }, 2, notBefore - 120_000))).toMatch(/is not valid before/);
    expect(refusal(() => checkMaterial({ cert: web.cert }, 2, now))).toMatch(/a certificate without its key/);
    expect(refusal(() => checkMaterial({ key: web.key }, 2, now))).toMatch(/a key without its certificate/);
    expect(
      refusal(() => checkMaterial({ ca: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----" }, 2, now)),
    ).toMatch(/CA 1 of the bundle does not parse/);
    // Nothing of the key is ever in a message.
    const message = refusal(() => checkMaterial({ cert: web.cert, key: pki.server.key }, 2, now));
    expect(message).not.toContain(pki.server.key.split("\n")[1]!);
  });

  it("tlsMaterial() checks at once", () => {
    expect(() => tlsMaterial({ cert: web.cert, key: pki.server.key })).toThrow(/not the certificate's/);
    expect(tlsMaterial({ ...web, ca: pki.ca }).snapshot()).toMatchObject({
      source: "inline",
      version: 1,
      rejected: 0,
      identity: "spiffe://example.org/ns/shop/sa/web",
    });
  });

  it("tlsFiles() fails at construction on missing or invalid files, naming them", () => {
    expect(() => tlsFiles({ cert: join(pki.dir, "nope.crt"), key: join(pki.dir, "web.key") })).toThrow(
      /cannot read cert file .*nope\.crt: ENOENT/,
    );
    expect(() => tlsFiles({ cert: join(pki.dir, "web.crt"), key: join(pki.dir, "server.key") })).toThrow(
      /tlsFiles: cert .*web\.crt, key .*server\.key: the key is not the certificate's/,
    );
    expect(() => tlsFiles({ cert: join(pki.dir, "web.crt") })).toThrow(/tlsFiles\.key/);
    expect(() => tlsFiles({})).toThrow(/at least/);
    expect(() => tlsFiles({ ca: join(pki.dir, "ca.crt"), pollMs: -1 })).toThrow(/tlsFiles\.pollMs/);
  });

  it("applies a good new pair, refuses a bad one with one warning and keeps the last good, then recovers", async () => {
    const dir = pki.dir;
    const first = pki.client("rot-a", "URI:spiffe://example.org/ns/shop/sa/a");
    const second = pki.client("rot-b", "URI:spiffe://example.org/ns/shop/sa/b");
    writeFileSync(join(dir, "live.crt"), first.cert);
    writeFileSync(join(dir, "live.key"), first.key);
    const warnings: string[] = [];
    const clock = fakeClock(0, Date.now());
    const source = tlsFiles({
      cert: join(dir, "live.crt"),
      key: join(dir, "live.key"),
      clock,
      onWarning: (m) => warnings.push(m),
    });
    const reload = (): Promise<void> => (source as unknown as { reload(): Promise<void> }).reload();
    const changes: number[] = [];
    source.onChange((m) => changes.push(m.version));
    try {
      // Key written first: a mismatched pair, refused; the first pair still serves.
      writeFileSync(join(dir, "live.key"), second.key);
      await reload();
      expect(source.current).toMatchObject({ version: 1, identity: "spiffe://example.org/ns/shop/sa/a" });
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(
        /refused new TLS material .*the key is not the certificate's.*still serving version 1/,
      );
      // The same bad set read again (a poll): no second warning.
      await reload();
      expect(warnings).toHaveLength(1);
      expect(source.snapshot()).toMatchObject({
        rejected: 1,
        lastRejection: { reason: expect.stringMatching(/not the certificate's/) },
      });
      // Then the certificate: the new pair applies, listeners hear of it.
      writeFileSync(join(dir, "live.crt"), second.cert);
      await reload();
      expect(source.current).toMatchObject({ version: 2, identity: "spiffe://example.org/ns/shop/sa/b" });
      expect(changes).toEqual([2]);
      expect(source.snapshot()).toMatchObject({ source: "files", version: 2, rejected: 1 });
    } finally {
      source.close();
    }
  });

  it("warns once when the certificate nears its expiry and once when it lapses", () => {
    const short = pki.issue("short", { sans: "URI:spiffe://example.org/ns/shop/sa/s", usage: "client", days: 3 });
    writeFileSync(join(pki.dir, "short-live.crt"), short.cert);
    writeFileSync(join(pki.dir, "short-live.key"), short.key);
    const notAfter = Date.parse(new X509Certificate(short.cert).validTo);
    const warnings: string[] = [];
    const clock = fakeClock(0, Date.now());
    const source = tlsFiles({
      cert: join(pki.dir, "short-live.crt"),
      key: join(pki.dir, "short-live.key"),
      clock,
      pollMs: 60_000,
      onWarning: (m) => warnings.push(m),
    });
    try {
      expect(warnings).toEqual([]);
      expect(source.snapshot().expiresInMs).toBeGreaterThan(2 * 24 * 3600_000);
      // A day and a bit before expiry (default threshold: a third of 3 days, at most 24 h → 24 h).
      clock.advance(notAfter - clock.wallNow() - 23 * 3600_000);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/expires in \d+ s .* and has not been rotated/);
      clock.advance(3600_000);
      expect(warnings).toHaveLength(1);
      clock.advance(23 * 3600_000);
      expect(warnings).toHaveLength(2);
      expect(warnings[1]).toMatch(/expired at .* nothing replaced it/);
      expect(source.snapshot().expiresInMs).toBeLessThan(0);
    } finally {
      source.close();
    }
  });
});

import { describe, expect, it } from "vitest";
import { hash32, suffixHashes } from "./hash.js";

/** A plain byte-wise Murmur3 x86 32 (the reference algorithm), to check the streaming UTF-8 one. */
function reference(bytes: Uint8Array, seed = 0): number {
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let h = seed | 0;
  const whole = bytes.length & ~3;
  const k32 = (k: number) => Math.imul((Math.imul(k, c1) << 15) | (Math.imul(k, c1) >>> 17), c2);
  for (let i = 0; i < whole; i += 4) {
    h ^= k32(
      (bytes[i] as number) |
        ((bytes[i + 1] as number) << 8) |
        ((bytes[i + 2] as number) << 16) |
        ((bytes[i + 3] as number) << 24),
    );
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let tail = 0;
  for (let i = bytes.length - 1; i >= whole; i--) tail = (tail << 8) | (bytes[i] as number);
  if (bytes.length > whole) h ^= k32(tail);
  h ^= bytes.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

describe("hash32 (Murmur3 x86 32 over UTF-8)", () => {
  it("matches the published Murmur3 test vectors", () => {
    expect(hash32("")).toBe(0);
    expect(hash32("", 1)).toBe(0x514e28b7);
    expect(hash32("hello")).toBe(0x248bfa47);
    expect(hash32("The quick brown fox jumps over the lazy dog")).toBe(0x2e4ff723);
    expect(hash32("Hello, world!", 1234)).toBe(0xfaf6cdb3);
  });

  it("hashes the UTF-8 bytes, as TextEncoder encodes them (2-, 3-, 4-byte characters, lone surrogates)", () => {
    const encoder = new TextEncoder();
    for (const text of [
      "é",
      "ü-42",
      "日本語のキー",
      "emoji 🎉 key",
      "a\ud800b",
      "\udc00",
      "mixed ascii ñ 中 𝄞 end",
      "x".repeat(37),
    ]) {
      for (const seed of [0, 1, 0xdeadbeef]) expect(hash32(text, seed)).toBe(reference(encoder.encode(text), seed));
    }
  });

  it("spreads similar keys evenly (sequential ids into 16 buckets)", () => {
    const buckets = new Array<number>(16).fill(0);
    for (let i = 0; i < 160_000; i++) {
      const b = hash32(`user-${i}`) >>> 28;
      buckets[b] = (buckets[b] as number) + 1;
    }
    for (const count of buckets) expect(Math.abs(count - 10_000)).toBeLessThan(500);
  });
});

describe("suffixHashes", () => {
  it("equals hash32(prefix + i) for every prefix length and any start", () => {
    for (const prefix of ["", "a", "ab", "abc", "http://10.0.0.1:8080_", "http://ñ.example:80_", "𝄞_"]) {
      const out = new Uint32Array(1200);
      suffixHashes(prefix, 0, out);
      for (let i = 0; i < out.length; i += 7) expect(out[i]).toBe(hash32(prefix + i));
      const extended = new Uint32Array(1300);
      extended.set(out);
      suffixHashes(prefix, 1200, extended);
      expect(extended[1299]).toBe(hash32(`${prefix}1299`));
      expect(extended[1199]).toBe(out[1199]);
    }
  });
});

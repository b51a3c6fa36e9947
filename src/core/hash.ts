/**
 * The string hash behind the consistent-hash pickers and a route's sticky traffic split:
 * MurmurHash3 (x86, 32-bit) over the UTF-8 bytes of a string. Consistent hashing only works if
 * every client places a key and an endpoint at the same spot, so the hash must be the same in
 * every process and every version of Node — not a per-process seeded hash — and it must spread
 * similar strings ("10.0.0.1:80_0", "10.0.0.1:80_1") evenly. Murmur3's final avalanche does
 * that; plain FNV-1a does not mix its low bits enough for short, similar keys. The UTF-8 bytes
 * make it agree with any other Murmur3 implementation (test vectors in `hash.test.ts`).
 *
 * 32 bits are enough here: a ring of a million entries has about a hundred colliding pairs,
 * which ties are broken by URL (see `ring-hash.ts`), and a Maglev table indexes 65 537 slots.
 * Encoding is done while hashing, with no buffer: a key is hashed on every pick.
 * `suffixHashes` hashes `"<prefix><i>"` for many i from the prefix's state, so building a ring
 * does not re-hash an endpoint's URL for every point.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** Mixes one 4-byte little-endian block into the running hash. */
function mixBlock(h: number, block: number): number {
  let k = Math.imul(block, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/**
 * MurmurHash3 x86 32-bit of the UTF-8 encoding of `text` (lone surrogates encode as U+FFFD, as
 * `TextEncoder` does), as an unsigned 32-bit integer.
 * @param seed default 0
 * @example hash32("user-42") // the same number in every process
 */
export function hash32(text: string, seed = 0): number {
  let h = seed | 0;
  let block = 0;
  let filled = 0;
  let length = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    let cp = text.charCodeAt(i);
    if (cp < 0x80) {
      // ASCII, the common case: one byte.
      block |= cp << (filled << 3);
      length++;
      if (++filled === 4) {
        h = mixBlock(h, block);
        block = 0;
        filled = 0;
      }
      continue;
    }
    let bytes: number;
    let count: number;
    if (cp < 0x800) {
      bytes = 0xc0 | (cp >>> 6) | ((0x80 | (cp & 63)) << 8);
      count = 2;
    } else {
      const low = i + 1 < n ? text.charCodeAt(i + 1) : 0;
      if (cp >= 0xd800 && cp < 0xdc00 && low >= 0xdc00 && low < 0xe000) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        i++;
        bytes =
          0xf0 |
          (cp >>> 18) |
          ((0x80 | ((cp >>> 12) & 63)) << 8) |
          ((0x80 | ((cp >>> 6) & 63)) << 16) |
          ((0x80 | (cp & 63)) << 24);
        count = 4;
      } else {
        if (cp >= 0xd800 && cp < 0xe000) cp = 0xfffd;
        bytes = 0xe0 | (cp >>> 12) | ((0x80 | ((cp >>> 6) & 63)) << 8) | ((0x80 | (cp & 63)) << 16);
        count = 3;
      }
    }
    length += count;
    for (let b = 0; b < count; b++) {
      block |= ((bytes >>> (b << 3)) & 0xff) << (filled << 3);
      if (++filled === 4) {
        h = mixBlock(h, block);
        block = 0;
        filled = 0;
      }
    }
  }
  return finish(h, block, filled, length);
}

/**
 * `hash32(prefix + i)` for i = `from` … `out.length - 1`, written to `out[i]`. The prefix is
 * hashed once; each point then costs only its decimal digits.
 * @example suffixHashes("http://10.0.0.1:80_", 0, new Uint32Array(160)) // ring points
 */
export function suffixHashes(prefix: string, from: number, out: Uint32Array): void {
  // Hash the prefix's whole blocks once; its tail bytes (< 4) are replayed for each suffix.
  const bytes = new TextEncoder().encode(prefix);
  const whole = bytes.length & ~3;
  let h = 0;
  for (let b = 0; b < whole; b += 4) {
    h = mixBlock(
      h,
      (bytes[b] as number) |
        ((bytes[b + 1] as number) << 8) |
        ((bytes[b + 2] as number) << 16) |
        ((bytes[b + 3] as number) << 24),
    );
  }
  let tail = 0;
  const tailLength = bytes.length - whole;
  for (let b = 0; b < tailLength; b++) tail |= (bytes[whole + b] as number) << (b << 3);
  const digits = new Uint8Array(16);
  for (let i = from; i < out.length; i++) {
    let d = 0;
    let v = i;
    do {
      digits[d++] = 48 + (v % 10);
      v = Math.floor(v / 10);
    } while (v > 0);
    const length = bytes.length + d;
    let state = h;
    let block = tail;
    let filled = tailLength;
    while (d > 0) {
      block |= (digits[--d] as number) << (filled << 3);
      if (++filled === 4) {
        state = mixBlock(state, block);
        block = 0;
        filled = 0;
      }
    }
    out[i] = finish(state, block, filled, length);
  }
}

/** The tail and final avalanche of Murmur3. */
function finish(h: number, block: number, filled: number, length: number): number {
  if (filled > 0) {
    let k = Math.imul(block, C1);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, C2);
  }
  return fmix32(h ^ length);
}

/** Murmur3's finalizer: every input bit affects every output bit. Unsigned 32-bit result. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

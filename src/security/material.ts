/**
 * TLS material — a certificate chain, its private key and a trust bundle — checked whole before
 * anything uses it: every PEM block parses, the key is the certificate's, the certificate is
 * within its validity period, and the bundle holds at least one CA. A half-written file, a
 * mismatched pair or an expired certificate is refused with the reason, never half-applied.
 *
 * `TlsSource` is what the client's transport and `weft/server` read: the current material, a
 * version that moves when new material applies, and a change signal. `tlsMaterial()` is a fixed
 * one from PEM strings; `tlsFiles()` (files.ts) watches files and rotates.
 */
import { X509Certificate, createPrivateKey } from "node:crypto";
import { systemClock } from "../core/clock.js";
import type { TlsSnapshot } from "../core/tls-snapshot.js";
import { spiffeUrisOf } from "./spiffe.js";

export type { TlsSnapshot };

export interface TlsPem {
  /** The certificate chain, PEM (leaf first). Optional for a client that presents none. */
  readonly cert?: string;
  /** The certificate's private key, PEM. Required with `cert`. */
  readonly key?: string;
  /** The trust bundle: the CAs whose certificates the peer's must chain to, PEM. */
  readonly ca?: string;
}

export interface TlsMaterial {
  readonly cert: string | undefined;
  readonly key: string | undefined;
  readonly ca: string | undefined;
  /** 1 for the first material, +1 each time new material applies. */
  readonly version: number;
  /** The leaf certificate's validity, epoch ms (undefined without a certificate). */
  readonly notBefore: number | undefined;
  readonly notAfter: number | undefined;
  /** The leaf's SPIFFE ID (its one `spiffe://` URI SAN), or null. */
  readonly identity: string | null;
  /** The leaf's serial number (hex), to tell certificates apart in logs and tests. */
  readonly serial: string | undefined;
  /** CAs in the trust bundle. */
  readonly caCount: number;
}

export interface TlsSource {
  /** The material in use. */
  readonly current: TlsMaterial;
  /** Calls `listener` after new material applied. Returns an unsubscribe function. */
  onChange(listener: (material: TlsMaterial) => void): () => void;
  snapshot(): TlsSnapshot;
  /** Stops watching (a no-op for inline material). */
  close(): void;
}

/**
 * A certificate issued "now" by a CA whose clock runs a little ahead of ours starts in our future:
 * accepted within this skew (peers allow as much or more), refused beyond it.
 */
const NOT_BEFORE_SKEW_MS = 60_000;

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?\r?\n-----END \1-----/g;

/** The PEM blocks of `text` with the given label ("CERTIFICATE"); throws when there is none or text outside blocks. */
function pemBlocks(text: string, what: string): string[] {
  const blocks = [...text.matchAll(PEM_BLOCK)];
  if (blocks.length === 0) throw new Error(`${what} holds no complete PEM block (empty or half-written?)`);
  const rest = text.replace(PEM_BLOCK, "").trim();
  if (rest !== "") throw new Error(`${what} has text outside its PEM blocks (a half-written or corrupt file?)`);
  return blocks.map((b) => b[0]);
}

/**
 * Checks `pem` whole and returns it as material (`version` as given), or throws an Error whose
 * message says what is wrong without quoting key material. `now` is wall-clock ms.
 */
export function checkMaterial(pem: TlsPem, version: number, now: number): TlsMaterial {
  let leaf: X509Certificate | undefined;
  if (pem.cert !== undefined) {
    if (pem.key === undefined) throw new Error("a certificate without its key");
    const certs = pemBlocks(pem.cert, "the certificate").map((block, i) => {
      try {
        return new X509Certificate(block);
      } catch (error) {
        throw new Error(`certificate ${i + 1} of the chain does not parse (${(error as Error).message})`, {
          cause: error,
        });
      }
    });
    const [first] = certs as [X509Certificate, ...X509Certificate[]]; // pemBlocks found at least one
    leaf = first;
    let key;
    try {
      pemBlocks(pem.key, "the key");
      key = createPrivateKey(pem.key);
    } catch (error) {
      throw new Error(`the key does not parse (${(error as Error).message.replace(/\s+/g, " ")})`, { cause: error });
    }
    if (!leaf.checkPrivateKey(key))
      throw new Error(
        `the key is not the certificate's (serial ${leaf.serialNumber}): a mismatched pair, or one file written before the other`,
      );
    const notBefore = Date.parse(leaf.validFrom);
    const notAfter = Date.parse(leaf.validTo);
    if (now >= notAfter)
      throw new Error(`the certificate (serial ${leaf.serialNumber}) expired at ${new Date(notAfter).toISOString()}`);
    if (now < notBefore - NOT_BEFORE_SKEW_MS)
      throw new Error(
        `the certificate (serial ${leaf.serialNumber}) is not valid before ${new Date(notBefore).toISOString()}`,
      );
  } else if (pem.key !== undefined) {
    throw new Error("a key without its certificate");
  }
  let caCount = 0;
  if (pem.ca !== undefined) {
    const blocks = pemBlocks(pem.ca, "the CA bundle");
    blocks.forEach((block, i) => {
      try {
        new X509Certificate(block);
      } catch (error) {
        throw new Error(`CA ${i + 1} of the bundle does not parse (${(error as Error).message})`, { cause: error });
      }
    });
    caCount = blocks.length;
  }
  const uris = leaf === undefined ? [] : spiffeUrisOf(leaf.subjectAltName);
  return Object.freeze({
    cert: pem.cert,
    key: pem.key,
    ca: pem.ca,
    version,
    notBefore: leaf === undefined ? undefined : Date.parse(leaf.validFrom),
    notAfter: leaf === undefined ? undefined : Date.parse(leaf.validTo),
    identity: uris.length === 1 ? (uris[0] as string) : null,
    serial: leaf?.serialNumber,
    caCount,
  });
}

/** The snapshot fields every source shares. */
export function materialSnapshot(
  material: TlsMaterial,
  now: number,
): Pick<TlsSnapshot, "version" | "identity" | "serial" | "notAfter" | "expiresInMs"> {
  return {
    version: material.version,
    identity: material.identity,
    serial: material.serial,
    notAfter: material.notAfter === undefined ? undefined : new Date(material.notAfter).toISOString(),
    expiresInMs: material.notAfter === undefined ? undefined : material.notAfter - now,
  };
}

/**
 * Fixed TLS material from PEM strings, checked now (an invalid pair throws here, naming what is
 * wrong). For material that rotates, `tlsFiles()`.
 * @example undiciTransport({ tls: { source: tlsMaterial({ ca: readFileSync("ca.pem", "utf8") }) } })
 */
export function tlsMaterial(pem: TlsPem, wallNow: () => number = systemClock.wallNow): TlsSource {
  const current = checkMaterial(pem, 1, wallNow());
  const appliedAt = wallNow();
  return Object.freeze({
    current,
    onChange: () => () => {},
    snapshot: (): TlsSnapshot => ({
      source: "inline",
      appliedAt,
      ...materialSnapshot(current, wallNow()),
      rejected: 0,
      lastRejection: null,
    }),
    close: () => {},
  });
}

/** True for a `TlsSource` (anything with `current` and `onChange`). */
export function isTlsSource(value: unknown): value is TlsSource {
  return (
    typeof value === "object" &&
    value !== null &&
    "current" in value &&
    typeof (value as { onChange?: unknown }).onChange === "function"
  );
}

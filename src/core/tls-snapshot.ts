/**
 * What a TLS material source shows in a snapshot (a client's `tls.material`, a server's `tls`):
 * the material's version, whose identity it carries, when it expires, and what was refused. Here
 * in `core/` so that snapshots of every side can name it; `security/` fills it.
 */
export interface TlsSnapshot {
  readonly source: "inline" | "files";
  readonly files?: { readonly cert?: string; readonly key?: string; readonly ca?: string };
  readonly version: number;
  /** Wall-clock ms when the current material applied. */
  readonly appliedAt: number;
  readonly identity: string | null;
  readonly serial: string | undefined;
  readonly notAfter: string | undefined;
  /** ms until the certificate expires (negative once it has). */
  readonly expiresInMs: number | undefined;
  /** Candidate material refused (half-written, mismatched, expired, unparsable). */
  readonly rejected: number;
  readonly lastRejection: { readonly at: number; readonly reason: string } | null;
}

/**
 * TLS origination for the undici and HTTP/2 transports: the CA bundle to verify servers with, the
 * client certificate to present (mTLS), the SPIFFE identity the server must prove, and rotation.
 *
 * - Verification is always on. `insecure: true` turns it off for tests only, and warns when the
 *   transport is made; there is no other way to turn it off.
 * - `identity` (a SPIFFE ID, a `spiffe://domain/…/*` pattern, or a list): the server certificate
 *   must chain to the bundle **and** carry exactly one `spiffe://` URI SAN that matches — instead
 *   of the host-name check, as SPIFFE prescribes (an SVID names a workload, not a host). A
 *   mismatch fails the handshake with `WEFT_ERR_IDENTITY` before any byte of the request is sent.
 *   Without `identity`, the host name (or IP) of the endpoint is checked against the SANs.
 * - SNI: `servername` when given, else the endpoint's host name (none for an IP address, which SNI
 *   may not carry).
 * - Rotation: every new connection reads the source's current material; the secure context is
 *   made once per material version, and a connector per origin (each with its TLS session cache,
 *   so a resumed session never carries the old certificate and origins never evict each other's). Connections made before a rotation finish their requests and close when
 *   idle (`keepAliveTimeoutMs`); nothing in flight is cut. The HTTP/2 transport (one long-lived
 *   session per origin) closes its sessions gracefully on a rotation, so new streams go to a new one.
 */
import { isIP } from "node:net";
import { checkServerIdentity, createSecureContext, type PeerCertificate } from "node:tls";
import { buildConnector } from "undici";
import { systemClock } from "../core/clock.js";
import { ErrorCodes, WeftError } from "../core/errors.js";
import { checkKeys, fail, isPlainObject } from "../core/validate.js";
import { isTlsSource, tlsMaterial, type TlsMaterial, type TlsSnapshot, type TlsSource } from "../security/material.js";
import { identityMatcher, spiffeUrisOf } from "../security/spiffe.js";

export interface TlsOptions {
  /** Where the material comes from: `tlsFiles({ cert, key, ca })` (rotates) or `tlsMaterial({ … })`. */
  readonly source?: TlsSource;
  /** Inline PEM, instead of `source`: the trust bundle. Default: Node's bundled root CAs. */
  readonly ca?: string;
  /** Inline PEM, instead of `source`: the client certificate to present (mTLS), with `key`. */
  readonly cert?: string;
  readonly key?: string;
  /** The SPIFFE ID the server must present: exact, `spiffe://domain/*`, `spiffe://domain/ns/x/*`, `"*"`, or a list. */
  readonly identity?: string | readonly string[];
  /** SNI and host-name check name. Default: the endpoint's host name (none for an IP). */
  readonly servername?: string;
  /** Tests only: accept any server certificate. Warns. */
  readonly insecure?: boolean;
  readonly onWarning?: (message: string) => void;
}

/** A server presented a certificate whose SPIFFE ID is not the one the client expects. */
export class IdentityError extends WeftError {
  /** What the client expected (the patterns as written). */
  readonly expected: readonly string[];
  /** The SPIFFE IDs the server's certificate carried (empty when none). */
  readonly presented: readonly string[];
  readonly endpoint: string;
  constructor(endpoint: string, expected: readonly string[], presented: readonly string[]) {
    const got =
      presented.length === 0
        ? "a certificate with no spiffe:// URI SAN"
        : presented.length > 1
          ? `${presented.length} SPIFFE IDs (${presented.join(", ")}; an SVID has exactly one)`
          : presented[0];
    super(ErrorCodes.IDENTITY, `${endpoint} presented ${got}; expected ${expected.join(" or ")}`);
    this.expected = expected;
    this.presented = presented;
    this.endpoint = endpoint;
  }
}

/** A TLS handshake failed for a reason other than the SPIFFE identity: expired, unknown CA, wrong name… */
export class TlsError extends WeftError {
  /** OpenSSL's / Node's code (`CERT_HAS_EXPIRED`, `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, `ERR_TLS_CERT_ALTNAME_INVALID`…). */
  readonly tlsCode: string;
  readonly endpoint: string;
  constructor(endpoint: string, tlsCode: string, cause: unknown) {
    super(ErrorCodes.TLS, `TLS handshake with ${endpoint} failed: ${explain(tlsCode, cause)} (${tlsCode})`, { cause });
    this.tlsCode = tlsCode;
    this.endpoint = endpoint;
  }
}

const TLS_CODES: Readonly<Record<string, string>> = {
  CERT_HAS_EXPIRED: "the server's certificate has expired",
  CERT_NOT_YET_VALID: "the server's certificate is not valid yet",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "the server's certificate is not signed by a CA in the trust bundle",
  UNABLE_TO_GET_ISSUER_CERT: "the server's certificate is not signed by a CA in the trust bundle",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "the server's certificate is not signed by a CA in the trust bundle",
  SELF_SIGNED_CERT_IN_CHAIN: "the server's chain ends in a CA that is not in the trust bundle",
  DEPTH_ZERO_SELF_SIGNED_CERT: "the server's certificate is self-signed and not in the trust bundle",
  CERT_SIGNATURE_FAILURE: "the server's certificate signature does not verify",
  CERT_REVOKED: "the server's certificate is revoked",
  ERR_TLS_CERT_ALTNAME_INVALID: "the server's certificate does not name this host",
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: "the server does not trust the client certificate's CA",
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: "the server refused the client certificate",
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: "the server requires a client certificate and none was presented",
  ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR: "the handshake failed to verify (a key that is not the certificate's?)",
  ERR_SSL_WRONG_VERSION_NUMBER: "the endpoint does not speak TLS (plain HTTP on an https:// URL?)",
  ERR_SSL_PACKET_LENGTH_TOO_LONG: "the endpoint does not speak TLS (plain HTTP on an https:// URL?)",
  ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL:
    "the server speaks none of the protocols offered over ALPN (h2 to an HTTP/1.1-only server?)",
  ALPN_NOT_H2: "the server did not choose h2 over ALPN (an HTTP/1.1-only server?)",
};

function explain(code: string, cause: unknown): string {
  const known = TLS_CODES[code];
  if (known !== undefined)
    return known + (code === "ERR_TLS_CERT_ALTNAME_INVALID" ? `: ${(cause as Error).message}` : "");
  return (cause as Error | undefined)?.message ?? String(cause);
}

/** The TLS failure in `error` (or its cause chain) as a weft error, or undefined when it is not one. */
export function tlsFailure(error: unknown, endpoint: string): WeftError | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && typeof current === "object" && current !== null; depth++) {
    if (current instanceof IdentityError || current instanceof TlsError) return current;
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && (TLS_CODES[code] !== undefined || code.startsWith("ERR_SSL_")))
      return new TlsError(endpoint, code, current);
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

export interface TlsClientSnapshot {
  readonly identity: readonly string[] | null;
  readonly insecure: boolean;
  /** The client certificate and bundle in use (rotation version, expiry). */
  readonly material: TlsSnapshot;
  /** Handshakes refused because the server's identity did not match. */
  readonly identityFailures: number;
  readonly lastIdentityFailure: {
    readonly endpoint: string;
    readonly presented: readonly string[];
    readonly at: number;
  } | null;
  /** Other TLS handshake failures (expired, unknown CA, wrong name…), by code. */
  readonly tlsFailures: Readonly<Record<string, number>>;
}

/** What a transport holds for TLS: the connector undici calls, and the counters. */
export class TlsClient {
  readonly source: TlsSource;
  readonly #ownsSource: boolean;
  readonly #identity: readonly string[] | null;
  readonly #matches: ((id: string) => boolean) | null;
  readonly #servername: string | undefined;
  readonly #insecure: boolean;
  readonly #base: Record<string, unknown>;
  #version = 0;
  #options: Record<string, unknown> = {};
  readonly #connectors = new Map<string, buildConnector.connector>();
  #identityFailures = 0;
  #lastIdentityFailure: TlsClientSnapshot["lastIdentityFailure"] = null;
  readonly #tlsFailures: Record<string, number> = {};

  /** `base`: the pool's other connect options (timeout, …). */
  constructor(input: TlsOptions, base: Record<string, unknown>, option = "tls") {
    const options = input;
    if (!isPlainObject(input)) fail(option, input, "{ source?, ca?, cert?, key?, identity?, servername?, insecure? }");
    checkKeys(input, ["source", "ca", "cert", "key", "identity", "servername", "insecure", "onWarning"], option);
    if (options.source !== undefined && !isTlsSource(options.source))
      fail(`${option}.source`, options.source, "tlsFiles({ cert, key, ca }) or tlsMaterial({ cert, key, ca })");
    if (
      options.source !== undefined &&
      (options.ca !== undefined || options.cert !== undefined || options.key !== undefined)
    ) {
      fail(`${option}.source`, "source + inline PEM", "either `source` or inline `ca` / `cert` / `key`, not both");
    }
    for (const key of ["ca", "cert", "key", "servername"] as const) {
      if (options[key] !== undefined && (typeof options[key] !== "string" || options[key] === ""))
        fail(`${option}.${key}`, options[key], key === "servername" ? "a host name" : "a PEM string");
    }
    if (options.insecure !== undefined && typeof options.insecure !== "boolean")
      fail(`${option}.insecure`, options.insecure, "true (tests only) or false");
    if (options.insecure === true && options.identity !== undefined)
      fail(`${option}.insecure`, true, "false when `identity` is set: an unverified certificate proves no identity");
    const warn = options.onWarning ?? ((m: string) => console.warn(m));
    if (options.source !== undefined) {
      this.source = options.source;
      this.#ownsSource = false;
    } else {
      try {
        this.source = tlsMaterial({ ca: options.ca, cert: options.cert, key: options.key });
      } catch (error) {
        fail(
          `${option}.${options.cert !== undefined ? "cert" : "ca"}`,
          "(PEM)",
          `valid TLS material: ${(error as Error).message}`,
        );
      }
      this.#ownsSource = true;
    }
    if (options.identity !== undefined) {
      const list = typeof options.identity === "string" ? [options.identity] : options.identity;
      if (!Array.isArray(list) || list.length === 0)
        fail(`${option}.identity`, options.identity, "a SPIFFE ID, a pattern, or a non-empty list of them");
      this.#matches = identityMatcher(list, `${option}.identity`); // checks every entry
      this.#identity = Object.freeze([...(list as readonly string[])]);
    } else {
      this.#identity = null;
      this.#matches = null;
    }
    this.#servername = options.servername;
    this.#insecure = options.insecure === true;
    this.#base = base;
    if (this.#insecure)
      warn(`weft: ${option}.insecure is on — server certificates are NOT verified; use it only in tests`);
  }

  /**
   * undici's `connect` option: each new connection with the material current now. One connector
   * per origin — its own TLS session cache, so two servers on one host (or one `servername`) do
   * not evict each other's sessions — all made again when the material changes.
   */
  readonly connect: buildConnector.connector = (opts, callback) => {
    const options = this.#current();
    const key = `${opts.hostname}:${opts.port}`;
    let connector = this.#connectors.get(key);
    if (connector === undefined) {
      connector = buildConnector(options);
      this.#connectors.set(key, connector);
    }
    connector({ ...opts, servername: this.#servernameFor(opts.hostname) }, callback);
  };

  /**
   * `tls.connect()` options for a new connection to `hostname` with the material current now (its
   * secure context, the identity check, SNI): for a transport that makes its own connections
   * (the HTTP/2 transport's sessions), with the base options given to the constructor.
   */
  connectOptions(hostname: string): Record<string, unknown> {
    return { ...this.#current(), servername: this.#servernameFor(hostname) };
  }

  /** The connect options of the current material, made again when it changes. */
  #current(): Record<string, unknown> {
    const material = this.source.current;
    if (this.#version !== material.version) {
      this.#version = material.version;
      this.#connectors.clear();
      // Parsed once per material version, not per handshake (~1 ms of PEM parsing per mTLS connection).
      this.#options = this.#optionsFor(material);
    }
    return this.#options;
  }

  /** `servername` when given, else the host name; none for an IP address, which SNI may not carry. */
  #servernameFor(hostname: string): string | undefined {
    return this.#servername ?? (isIP(hostname.replace(/^\[|\]$/g, "")) === 0 ? hostname : undefined);
  }

  #optionsFor(material: TlsMaterial): Record<string, unknown> {
    const matches = this.#matches;
    const secureContext = createSecureContext({
      ...(material.ca === undefined ? {} : { ca: material.ca }),
      ...(material.cert === undefined ? {} : { cert: material.cert, key: material.key }),
      minVersion: "TLSv1.2",
    });
    return {
      ...this.#base,
      secureContext,
      rejectUnauthorized: !this.#insecure,
      // Called by Node after the chain verified; an Error returned fails the handshake.
      checkServerIdentity: (host: string, cert: PeerCertificate): Error | undefined => {
        if (matches === null) return checkServerIdentity(this.#servername ?? host, cert);
        const presented = spiffeUrisOf(cert.subjectaltname);
        if (presented.length === 1 && matches(presented[0] as string)) return undefined;
        const error = new IdentityError(`https://${host}`, this.#identity ?? [], presented);
        this.#identityFailures++;
        this.#lastIdentityFailure = { endpoint: error.endpoint, presented, at: systemClock.wallNow() };
        return error;
      },
    };
  }

  /** Counts a failed handshake that is not an identity mismatch (those count themselves). */
  count(error: WeftError): void {
    if (error instanceof TlsError) this.#tlsFailures[error.tlsCode] = (this.#tlsFailures[error.tlsCode] ?? 0) + 1;
  }

  snapshot(): TlsClientSnapshot {
    return {
      identity: this.#identity,
      insecure: this.#insecure,
      material: this.source.snapshot(),
      identityFailures: this.#identityFailures,
      lastIdentityFailure: this.#lastIdentityFailure,
      tlsFailures: { ...this.#tlsFailures },
    };
  }

  close(): void {
    if (this.#ownsSource) this.source.close();
  }
}

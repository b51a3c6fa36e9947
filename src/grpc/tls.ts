/**
 * weft's `tls` option on a gRPC channel: the TLS origination the undici and HTTP/2 transports use
 * (`TlsClient`, transport/tls.ts) — trust bundle, client certificate, the SPIFFE identity check,
 * counters — handed to grpc-js as channel credentials.
 *
 * grpc-js takes a ready `SecureContext` and `checkServerIdentity`
 * (`credentials.createFromSecureContext`), fixed for the channel's life. Its credentials that
 * follow new material (certificate providers, `grpc.experimental`) would apply it to the
 * channel's next connection only — and a channel keeps its one HTTP/2 connection as long as the
 * server does. So a channel is made with the material current when it is made, and a rotation
 * makes new channels (transport.ts): the old ones finish their calls and close.
 *
 * The identity check runs inside the handshake, as for HTTP: a server with the wrong SPIFFE ID
 * never receives the call. grpc-js reports the failed connection only as text in an UNAVAILABLE
 * ("No connection established. Last error: …"), so the channel keeps the handshake its check
 * refused, and the attempt that fails with that text is rejected with weft's error
 * (`WEFT_ERR_IDENTITY`, or `WEFT_ERR_TLS` for a certificate that does not name the host): never
 * sent, so the call goes to another endpoint and never to this one again.
 */
import type { PeerCertificate, SecureContext } from "node:tls";
import type { ChannelCredentials, ChannelOptions } from "@grpc/grpc-js";
import { IdentityError, tlsFailure, type TlsClient } from "../client/index.js";
import type { WeftError } from "../core/errors.js";
import type { Grpc } from "./load.js";

/** The part of `TlsClient.connectOptions()` a channel uses. */
interface ConnectOptions {
  readonly secureContext: SecureContext;
  readonly rejectUnauthorized: boolean;
  readonly checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined;
  readonly servername: string | undefined;
}

const NO_OPTIONS: ChannelOptions = Object.freeze({});

/** One channel's TLS: its credentials, and the handshake its check last refused. */
export class ChannelTls {
  readonly credentials: ChannelCredentials;
  /** Channel options the credentials need (`servername`: grpc-js's target name override). */
  readonly channelOptions: ChannelOptions;
  /** The error the check returned (its message is what grpc-js's status carries) and weft's for it. */
  #refused: { readonly message: string; readonly error: WeftError } | null = null;

  /** For the endpoint `origin` (`https://host:port`), whose host name is `hostname`, with the material current now. */
  constructor(grpc: Grpc, tls: TlsClient, origin: string, hostname: string) {
    const options = tls.connectOptions(hostname) as unknown as ConnectOptions;
    const check = options.checkServerIdentity;
    this.credentials = grpc.credentials.createFromSecureContext(options.secureContext, {
      rejectUnauthorized: options.rejectUnauthorized,
      checkServerIdentity: (host, cert) => {
        const error = check(host, cert);
        if (error !== undefined) this.#refuse(tls, origin, error);
        return error;
      },
    });
    // grpc-js sends the target's host as SNI and checks it; a configured `servername` replaces both.
    const servername = options.servername;
    this.channelOptions =
      servername !== undefined && servername !== hostname
        ? { "grpc.ssl_target_name_override": servername }
        : NO_OPTIONS;
  }

  /**
   * weft's error for an UNAVAILABLE that grpc-js made (`details`) because this channel's check
   * refused the handshake, or undefined when the status says nothing of it.
   */
  refusal(details: string): WeftError | undefined {
    const refused = this.#refused;
    return refused !== null && details.includes(refused.message) ? refused.error : undefined;
  }

  #refuse(tls: TlsClient, origin: string, error: Error): void {
    const failure = tlsFailure(error, origin);
    if (failure === undefined) return;
    // Named by the endpoint, as the HTTP transports do (the check only knows the host name).
    if (failure instanceof IdentityError)
      this.#refused = { message: error.message, error: new IdentityError(origin, failure.expected, failure.presented) };
    else {
      // An identity mismatch counted itself; a host-name mismatch is counted here, once per handshake.
      tls.count(failure);
      this.#refused = { message: error.message, error: failure };
    }
  }
}

/**
 * Optional TLS for the transport, and the identity rule for certificates: a certificate
 * speaks for a node when its subject CN, or one of its subject alternative names (DNS, email,
 * URI...), equals the node *name* (`name@host`). The dialer checks the acceptor's certificate
 * against the name it dials; with `requireClientCert` the acceptor checks the dialer's
 * certificate against the name in its hello. The cookie handshake still runs inside TLS.
 */
import {
  createSecureContext,
  createServer,
  type PeerCertificate,
  type SecureContext,
  type Server,
} from "node:tls";
import { ConclaveError } from "../../lib/errors.ts";

/** TLS settings. PEM strings or buffers. */
export interface TransportTlsOptions {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** The certificate authorities peers' certificates must chain to. */
  readonly ca: string | Buffer | ReadonlyArray<string | Buffer>;
  /** Mutual TLS: the acceptor requires a client certificate naming the dialing node. */
  readonly requireClientCert?: boolean;
}

/** Every name a certificate speaks for: its subject CNs and the values of its subject alt names. */
export function certificateNames(certificate: PeerCertificate): string[] {
  const names: string[] = [];
  const commonName: unknown = certificate.subject?.CN;
  if (typeof commonName === "string") names.push(commonName);
  else if (Array.isArray(commonName)) names.push(...commonName.filter((cn) => typeof cn === "string"));
  for (const entry of (certificate.subjectaltname ?? "").split(", ")) {
    const colon = entry.indexOf(":");
    if (colon > 0) names.push(entry.slice(colon + 1));
  }
  return names;
}

/** True when the certificate names `nodeName`. An empty certificate (none presented) never matches. */
export function certificateMatchesName(certificate: PeerCertificate | undefined, nodeName: string): boolean {
  if (certificate === undefined || Object.keys(certificate).length === 0) return false;
  return certificateNames(certificate).includes(nodeName);
}

/** The TLS material, parsed once at construction so that a bad PEM fails there and not at a dial. */
export interface TlsContexts {
  /** The accepting side's TLS server (see {@link createTlsAcceptor}). */
  readonly acceptor: Server;
  readonly client: SecureContext;
}

/**
 * Parses the TLS options. The acceptor is a TLS server that never listens: the transport
 * accepts TCP connections itself (admission control comes first) and hands each admitted
 * socket to it with `emit("connection", socket)`, so that Node verifies client certificates
 * exactly as a listening TLS server does. Throws CONCLAVE_TLS_INVALID on unusable material.
 */
export function createTlsContexts(options: TransportTlsOptions, handshakeTimeoutMs: number): TlsContexts {
  const material = {
    cert: options.cert,
    key: options.key,
    ca: caList(options.ca),
    minVersion: "TLSv1.2" as const,
  };
  const requireClientCert = options.requireClientCert === true;
  try {
    const acceptor = createServer({
      ...material,
      requestCert: requireClientCert,
      rejectUnauthorized: requireClientCert,
      handshakeTimeout: handshakeTimeoutMs,
    });
    return { acceptor, client: createSecureContext(material) };
  } catch (error) {
    throw new ConclaveError(
      "CONCLAVE_TLS_INVALID",
      `the transport's TLS certificate, key or CA cannot be used (${String(error)}); check that they are PEM and that the key matches the certificate`,
      {},
      { cause: error },
    );
  }
}

/** Options for `tls.connect` to the node named `expectedName`: the chain and the name are checked. */
export function clientTlsOptions(client: SecureContext, expectedName: string) {
  return {
    secureContext: client,
    rejectUnauthorized: true,
    checkServerIdentity: (_host: string, certificate: PeerCertificate): Error | undefined =>
      certificateMatchesName(certificate, expectedName)
        ? undefined
        : new Error(`the peer's certificate does not name "${expectedName}" (CN or subject alt name)`),
  };
}

function caList(ca: TransportTlsOptions["ca"]): string | Buffer | Array<string | Buffer> {
  return typeof ca === "string" || Buffer.isBuffer(ca) ? ca : [...ca];
}

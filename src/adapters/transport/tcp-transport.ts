/**
 * The {@link Transport} over TCP (or TLS): one listener, one outbound link per peer for
 * sending, and the inbound connections peers dial to send to us. See DESIGN.md.
 *
 * @example
 * ```ts
 * const transport = new TcpTransport({
 *   self: { nodeId: "n1", name: "n1@10.0.0.1" },
 *   clusterId: "prod", cookie, listen: { host: "0.0.0.0", port: 4370 },
 * });
 * transport.onMessage((from, message) => runtime.receive(from, message));
 * await transport.start();
 * transport.setPeers(members);
 * ```
 */
import { createServer, type Server, type Socket } from "node:net";
import type { TLSSocket, Server as TlsServer } from "node:tls";
import { ConclaveError } from "../../lib/errors.ts";
import type {
  PeerAddress,
  PeerEvent,
  SendOptions,
  Transport,
  TransportStats,
} from "../../ports/transport.ts";
import {
  FAILED_HANDSHAKE_LIMIT_DEFAULT,
  type FailedHandshakeLimit,
  HandshakeAdmission,
  PENDING_HANDSHAKES_MAX_DEFAULT,
} from "./admission.ts";
import {
  type ConnectionContext,
  emptyStats,
  type MutableStats,
  type TransportSettings,
} from "./connection-context.ts";
import { FRAME_BYTES_MAX_DEFAULT } from "./frame-codec.ts";
import { deriveCookieKey, NAME_LENGTH_MAX } from "./handshake.ts";
import { InboundConnection, type InboundHooks, socketKey } from "./inbound-connection.ts";
import { encodeMessage } from "./message-codec.ts";
import { OutboundLink } from "./outbound-link.ts";
import { PART_HEADER_BYTES, SESSION_HEADER_BYTES } from "./session.ts";
import { certificateMatchesName, createTlsContexts, type TransportTlsOptions } from "./tls-identity.ts";

/** Configuration of a {@link TcpTransport}; every limit has a default. */
export interface TcpTransportOptions {
  readonly self: { readonly nodeId: string; readonly name: string };
  readonly clusterId: string;
  /** The cluster cookie (≥ 128 bits). Only a key derived from it is kept. */
  readonly cookie: string;
  /** Where to listen; port 0 picks a free port (see `localAddress`). */
  readonly listen: { readonly host: string; readonly port: number };
  /** Largest frame body from an authenticated peer (default 16 MiB); larger messages are not sent. */
  readonly frameBytesMax?: number;
  /** Time allowed for the TCP/TLS connect plus the cookie handshake (default 3 s). */
  readonly handshakeTimeoutMs?: number;
  /** Unauthenticated connections at once; beyond it new ones are closed at once (default 64). */
  readonly pendingHandshakesMax?: number;
  /** Failed handshakes allowed per source address (default 10 in a burst, 1/s, then 30 s blocked). */
  readonly failedHandshakeLimit?: FailedHandshakeLimit;
  /** Per-peer send queue bounds (default 4096 messages, 64 MiB). */
  readonly sendQueueMessagesMax?: number;
  readonly sendQueueBytesMax?: number;
  /** Reconnect backoff bounds (default 50 ms → 2 s). */
  readonly reconnectDelayMsMin?: number;
  readonly reconnectDelayMsMax?: number;
  /**
   * A link we keep sending on while nothing comes back from that peer for this long is treated
   * as stalled: it is redialed, and the peer's connection to us closed (default 5 s; see
   * `#resetStalledLinks`). Conclave passes twice its longest election timeout.
   */
  readonly peerSilenceMsMax?: number;
  /** TLS, optionally mutual, around every connection. */
  readonly tls?: TransportTlsOptions;
  /**
   * Accept inbound connections from cookie-authenticated nodes that are not in the peer set
   * ("guests", e.g. a node asking to join). Their messages are delivered with the sender
   * `guest:<name@host>`, which no member id can be; the receiver decides what a guest may say.
   */
  readonly admitGuests?: boolean;
}

/** The sender id of messages from a cookie-authenticated node outside the peer set. */
export function guestId(nodeName: string): string {
  return `${guestPrefix}${nodeName}`;
}
const guestPrefix = "guest:";

export class TcpTransport implements Transport {
  readonly #context: ConnectionContext;
  readonly #stats: MutableStats = emptyStats();
  readonly #listen: { readonly host: string; readonly port: number };
  readonly #admission: HandshakeAdmission;
  readonly #hooks: InboundHooks;
  readonly #admitGuests: boolean;
  #state: "new" | "started" | "stopped" = "new";
  #server: Server | null = null;
  /** With TLS: the non-listening TLS server that admitted sockets are handed to. */
  readonly #tlsAcceptor: TlsServer | null;
  /** With TLS: admitted connections waiting for their TLS handshake, by remote address and port. */
  readonly #awaitingTls = new Map<string, InboundConnection>();
  #localAddress: { host: string; port: number } | null = null;
  #peers = new Map<string, PeerAddress>();
  #peersByName = new Map<string, PeerAddress>();
  readonly #links = new Map<string, OutboundLink>();
  readonly #inbound = new Set<InboundConnection>();
  readonly #inboundByPeer = new Map<string, InboundConnection>();
  #messageHandler: ((from: string, message: unknown) => void) | null = null;
  #eventHandler: ((event: PeerEvent) => void) | null = null;
  /** When a message from each peer last arrived (performance.now()). */
  readonly #heardAtMs = new Map<string, number>();
  #stallCheck: NodeJS.Timeout | null = null;

  constructor(options: TcpTransportOptions) {
    const settings = resolveSettings(options);
    checkName("self.name", options.self.name);
    checkName("self.nodeId", options.self.nodeId);
    checkName("clusterId", options.clusterId);
    this.#listen = options.listen;
    this.#admitGuests = options.admitGuests === true;
    const tls =
      options.tls === undefined ? undefined : createTlsContexts(options.tls, settings.handshakeTimeoutMs);
    this.#tlsAcceptor = tls?.acceptor ?? null;
    this.#context = {
      self: options.self,
      clusterId: options.clusterId,
      cookieKey: deriveCookieKey(options.cookie),
      settings,
      clientTls: tls?.client,
      serverTls:
        options.tls === undefined ? undefined : { requireClientCert: options.tls.requireClientCert === true },
      stats: this.#stats,
      emit: (event) => this.#eventHandler?.(event),
    };
    this.#tlsAcceptor?.on("secureConnection", (socket: TLSSocket) => this.#onSecureConnection(socket));
    // A failed TLS handshake also closes the raw socket, which its InboundConnection reports.
    this.#tlsAcceptor?.on("tlsClientError", () => {});
    this.#admission = new HandshakeAdmission({
      pendingMax: options.pendingHandshakesMax ?? PENDING_HANDSHAKES_MAX_DEFAULT,
      limit: options.failedHandshakeLimit ?? FAILED_HANDSHAKE_LIMIT_DEFAULT,
    });
    this.#hooks = {
      refuse: (fromName, socket) => this.#refusal(fromName, socket),
      authenticated: (connection, peerName) => this.#onAuthenticated(connection, peerName),
      deliver: (from, message) => {
        if (this.#state !== "started") return;
        // Only for peers we send to (a link exists), so the map stays as small as the peer set.
        if (this.#links.has(from)) this.#heardAtMs.set(from, performance.now());
        this.#messageHandler?.(from, message);
      },
      closed: (connection) => this.#onInboundClosed(connection),
    };
  }

  get localAddress(): { host: string; port: number } | null {
    return this.#localAddress;
  }

  async start(): Promise<void> {
    if (this.#state !== "new") throw new ConclaveError("CONCLAVE_TRANSPORT_STATE", "a transport starts once");
    this.#state = "started";
    const server = createServer({ noDelay: true }, (socket) => this.#onConnection(socket));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.#listen.port, this.#listen.host, () => {
        server.off("error", reject);
        resolve();
      });
    }).catch((error: unknown) => {
      this.#state = "stopped";
      this.#server = null;
      throw new ConclaveError(
        "CONCLAVE_TRANSPORT_LISTEN_FAILED",
        `cannot listen on ${this.#listen.host}:${this.#listen.port} (${String(error)}); pick a free port or address`,
        {},
        { cause: error },
      );
    });
    // Accept errors (EMFILE...) are transient and the server keeps listening; without a listener
    // they would crash the process.
    server.on("error", () => {});
    const address = server.address();
    if (address !== null && typeof address === "object")
      this.#localAddress = { host: address.address, port: address.port };
    const everyMs = Math.max(50, Math.min(1000, Math.floor(this.#context.settings.peerSilenceMsMax / 4)));
    this.#stallCheck = setInterval(() => this.#resetStalledLinks(), everyMs);
    this.#stallCheck.unref();
  }

  /**
   * Redials links that look stalled. A partition drops packets silently: TCP keeps retransmitting
   * with a doubling timeout (up to two minutes), so after the network heals a connection can stay
   * silent for seconds to minutes before its next retransmission gets through (seen in the
   * partition tests: 3.3 s after a 5 s cut). We cannot see TCP's acknowledgements, but Raft
   * answers what we send: a leader's heartbeats, a candidate's votes, a forwarded proposal. So a
   * link we sent on since we last heard from its peer, silent for `peerSilenceMsMax`, is redialed
   * (a new connection starts with a fresh timeout, and our backoff is at most 2 s), and the peer's
   * connection to us is closed as well, so that a peer whose own link is the stalled one redials too.
   * Follower-to-follower links carry nothing in a healthy cluster, so they are never reset; a
   * pre-vote that a peer ignores (it hears its leader) costs a redial per period at most.
   */
  #resetStalledLinks(): void {
    const now = performance.now();
    for (const [nodeId, link] of this.#links) {
      if (link.state !== "open") continue;
      const since = Math.max(link.openedAtMs, this.#heardAtMs.get(nodeId) ?? 0);
      if (link.sentAtMs <= since || now - since < this.#context.settings.peerSilenceMsMax) continue;
      const silentMs = Math.round(now - since);
      link.reset(
        `nothing heard from the peer for ${silentMs} ms while sending to it (a stalled connection?)`,
      );
      void this.#inboundByPeer.get(nodeId)?.close("our link to this peer was stalled; redialing both ways");
      this.#stats.stalledLinksReset += 1;
    }
  }

  async stop(): Promise<void> {
    if (this.#state === "stopped") return;
    this.#state = "stopped";
    if (this.#stallCheck !== null) clearInterval(this.#stallCheck);
    this.#stallCheck = null;
    const closing = [...this.#links.values()].map((link) => link.close());
    this.#links.clear();
    closing.push(...[...this.#inbound].map((connection) => connection.close("transport stopped")));
    const server = this.#server;
    this.#server = null;
    this.#localAddress = null;
    if (server !== null) closing.push(new Promise<void>((resolve) => server.close(() => resolve())));
    await Promise.all(closing);
  }

  setPeers(peers: readonly PeerAddress[]): void {
    const byId = new Map<string, PeerAddress>();
    const byName = new Map<string, PeerAddress>();
    for (const peer of peers) {
      if (peer.nodeId === this.#context.self.nodeId) continue;
      checkPeer(peer);
      if (byId.has(peer.nodeId) || byName.has(peer.name)) {
        throw new ConclaveError(
          "CONCLAVE_PEERS_INVALID",
          `peer "${peer.nodeId}" (${peer.name}) is listed twice`,
        );
      }
      byId.set(peer.nodeId, peer);
      byName.set(peer.name, peer);
    }
    this.#peers = byId;
    this.#peersByName = byName;
    for (const [nodeId, link] of this.#links) {
      if (!samePeer(byId.get(nodeId), link.peer)) {
        void link.close();
        this.#links.delete(nodeId);
        this.#heardAtMs.delete(nodeId);
      }
    }
    for (const connection of this.#inbound) {
      const nodeId = connection.peerNodeId;
      const stillGuest = nodeId?.startsWith(guestPrefix) === true && !byName.has(connection.peerName ?? "");
      if (nodeId !== null && !stillGuest && byId.get(nodeId)?.name !== connection.peerName) {
        void connection.close("peer removed from the peer set");
      }
    }
  }

  send(to: string, message: unknown, options?: SendOptions): boolean {
    const peer = this.#state === "started" ? this.#peers.get(to) : undefined;
    const encoded = peer === undefined ? null : encodeMessage(message);
    if (peer === undefined || encoded === null || !encoded.ok) return this.#drop();
    if (
      SESSION_HEADER_BYTES + PART_HEADER_BYTES + encoded.value.length >
      this.#context.settings.frameBytesMax
    )
      return this.#drop();
    let link = this.#links.get(to);
    if (link === undefined) {
      link = new OutboundLink(this.#context, peer);
      this.#links.set(to, link);
    }
    return link.enqueue(encoded.value, options?.coalesce === true);
  }

  onMessage(handler: (from: string, message: unknown) => void): void {
    this.#messageHandler = handler;
  }

  onPeerEvent(handler: (event: PeerEvent) => void): void {
    this.#eventHandler = handler;
  }

  flush(): void {
    for (const link of this.#links.values()) link.flush();
  }

  stats(): TransportStats {
    return { ...this.#stats };
  }

  #drop(): false {
    this.#stats.messagesDropped += 1;
    return false;
  }

  #onConnection(socket: Socket): void {
    const address = socket.remoteAddress ?? "unknown";
    const admission = this.#state === "started" ? this.#admission.admit(address) : null;
    if (admission === null || !admission.ok) {
      this.#stats.connectionsRejected += 1;
      socket.destroy();
      return;
    }
    const connection = new InboundConnection(this.#context, socket, address, this.#admission, this.#hooks);
    this.#inbound.add(connection);
    if (this.#tlsAcceptor !== null) {
      this.#awaitingTls.set(connection.remoteKey, connection);
      this.#tlsAcceptor.emit("connection", socket);
    }
  }

  #onSecureConnection(socket: TLSSocket): void {
    const key = socketKey(socket);
    const connection = this.#awaitingTls.get(key);
    this.#awaitingTls.delete(key);
    if (connection === undefined) socket.destroy();
    else connection.attachSecure(socket);
  }

  #refusal(fromName: string, socket: Socket): string | undefined {
    if (!this.#peersByName.has(fromName) && !this.#admitGuests) return `unknown node name "${fromName}"`;
    const tls = this.#context.serverTls;
    if (
      tls?.requireClientCert === true &&
      !certificateMatchesName((socket as TLSSocket).getPeerCertificate(), fromName)
    ) {
      return `the client certificate does not name "${fromName}"`;
    }
    return undefined;
  }

  #onAuthenticated(connection: InboundConnection, peerName: string): string | undefined {
    if (this.#state !== "started") return undefined;
    const peer = this.#peersByName.get(peerName);
    const nodeId = peer?.nodeId ?? (this.#admitGuests ? guestId(peerName) : undefined);
    if (nodeId === undefined) return undefined;
    // One receiving connection per peer: a newer one means the peer redialed; the old one is dead.
    void this.#inboundByPeer.get(nodeId)?.close("replaced by a newer connection from the same peer");
    this.#inboundByPeer.set(nodeId, connection);
    // It is up: our link to it need not wait out its backoff (OutboundLink.peerIsBack).
    this.#links.get(nodeId)?.peerIsBack();
    return nodeId;
  }

  #onInboundClosed(connection: InboundConnection): void {
    this.#inbound.delete(connection);
    if (this.#awaitingTls.get(connection.remoteKey) === connection)
      this.#awaitingTls.delete(connection.remoteKey);
    const nodeId = connection.peerNodeId;
    if (nodeId !== null && this.#inboundByPeer.get(nodeId) === connection) this.#inboundByPeer.delete(nodeId);
  }
}

function resolveSettings(options: TcpTransportOptions): TransportSettings {
  const settings: TransportSettings = {
    frameBytesMax: options.frameBytesMax ?? FRAME_BYTES_MAX_DEFAULT,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? 3000,
    sendQueueMessagesMax: options.sendQueueMessagesMax ?? 4096,
    sendQueueBytesMax: options.sendQueueBytesMax ?? 64 * 1024 * 1024,
    reconnectDelayMsMin: options.reconnectDelayMsMin ?? 50,
    reconnectDelayMsMax: options.reconnectDelayMsMax ?? 2000,
    peerSilenceMsMax: options.peerSilenceMsMax ?? 5000,
    socketBufferBytesMax: 4 * 1024 * 1024,
  };
  for (const [name, value] of Object.entries(settings)) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new ConclaveError(
        "CONCLAVE_CONFIG_INVALID",
        `transport ${name} must be a positive integer, got ${value}`,
      );
    }
  }
  if (settings.frameBytesMax > 0xffff_ffff || settings.reconnectDelayMsMax < settings.reconnectDelayMsMin) {
    throw new ConclaveError(
      "CONCLAVE_CONFIG_INVALID",
      "transport frameBytesMax must fit in 32 bits and reconnectDelayMsMax must be ≥ reconnectDelayMsMin",
    );
  }
  return settings;
}

function checkName(what: string, value: string): void {
  if (typeof value !== "string" || value.length === 0 || value.length > NAME_LENGTH_MAX) {
    throw new ConclaveError(
      "CONCLAVE_CONFIG_INVALID",
      `transport ${what} must be 1..${NAME_LENGTH_MAX} characters`,
    );
  }
}

function checkPeer(peer: PeerAddress): void {
  checkName(`peer nodeId`, peer.nodeId);
  checkName(`peer name`, peer.name);
  if (!Number.isInteger(peer.port) || peer.port <= 0 || peer.port > 65_535 || peer.host.length === 0) {
    throw new ConclaveError("CONCLAVE_PEERS_INVALID", `peer "${peer.nodeId}" has no valid host:port`);
  }
}

function samePeer(a: PeerAddress | undefined, b: PeerAddress): boolean {
  return a !== undefined && a.name === b.name && a.host === b.host && a.port === b.port;
}

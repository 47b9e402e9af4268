/**
 * One accepted connection: the acceptor side of the cookie handshake (bounded by a timeout and
 * a small frame limit), then the receiving side of an authenticated session. Inbound
 * connections only receive: the peer dialed them to send to us. Any violation — garbage,
 * oversized or malformed frame, bad tag, replayed or reordered frame — closes the connection
 * at once; nothing after the offending frame is delivered.
 */
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import type { HandshakeAdmission } from "./admission.ts";
import {
  type ConnectionContext,
  HANDSHAKE_FRAME_BYTES_MAX,
  readHandshakeMessage,
  socketClosed,
  writeHandshakeMessage,
} from "./connection-context.ts";
import { FrameDecoder } from "./frame-codec.ts";
import {
  type AcceptorPending,
  AUTH_FAILED,
  answerHello,
  type HandshakeFailure,
  PROTOCOL_VERSION,
  parseHello,
  verifyProof,
} from "./handshake.ts";
import { decodeMessage } from "./message-codec.ts";
import { SessionOpener } from "./session.ts";

/** How long a refused peer gets to read our "auth failed" before the socket is destroyed. */
const REFUSAL_LINGER_MS = 1000;
const KEEPALIVE_INITIAL_DELAY_MS = 10_000;

/** What the transport decides for its inbound connections. */
export interface InboundHooks {
  /** A local reason to refuse the dialer named `fromName`, or undefined to let it prove the cookie. */
  refuse(fromName: string, socket: Socket): string | undefined;
  /** The dialer proved the cookie: its nodeId, or undefined if it stopped being a member meanwhile. */
  authenticated(connection: InboundConnection, peerName: string): string | undefined;
  deliver(fromNodeId: string, message: unknown): void;
  closed(connection: InboundConnection): void;
}

type InboundState = "hello" | "proof" | "open" | "closing" | "closed";

export class InboundConnection {
  readonly remoteAddress: string;
  /** Address and port of the raw socket: how a TLS socket is matched to its connection. */
  readonly remoteKey: string;
  readonly #context: ConnectionContext;
  readonly #admission: HandshakeAdmission;
  readonly #hooks: InboundHooks;
  readonly #raw: Socket;
  /** The socket we read and write: the raw one, or the TLS one once its handshake is done. */
  #socket: Socket | null = null;
  #lastError = "connection closed by the peer";
  readonly #decoder = new FrameDecoder({ frameBytesMax: HANDSHAKE_FRAME_BYTES_MAX });
  #state: InboundState = "hello";
  #settled = false;
  #framesReceived = 0;
  #pending: AcceptorPending | null = null;
  #opener: SessionOpener | null = null;
  #peerNodeId: string | null = null;
  #peerName: string | null = null;
  #timer: NodeJS.Timeout | null;

  /**
   * Takes an accepted socket. Without TLS it is the application socket at once; with TLS the
   * transport hands the raw socket to its `tls.Server` (which verifies client certificates)
   * and calls {@link attachSecure} with the TLS socket once the TLS handshake succeeded. The
   * handshake timeout covers both handshakes.
   */
  constructor(
    context: ConnectionContext,
    rawSocket: Socket,
    remoteAddress: string,
    admission: HandshakeAdmission,
    hooks: InboundHooks,
  ) {
    this.#context = context;
    this.remoteAddress = remoteAddress;
    this.remoteKey = socketKey(rawSocket);
    this.#admission = admission;
    this.#hooks = hooks;
    this.#raw = rawSocket;
    rawSocket.setNoDelay(true);
    rawSocket.setKeepAlive(true, KEEPALIVE_INITIAL_DELAY_MS);
    const timeoutMs = context.settings.handshakeTimeoutMs;
    this.#timer = setTimeout(() => this.#refuse("handshake timed out", "timeout"), timeoutMs);
    rawSocket.on("error", (error: Error) => {
      this.#lastError = error.message;
    });
    rawSocket.on("close", () => this.#onClose());
    if (context.serverTls === undefined) this.#attach(rawSocket);
  }

  /** The TLS handshake succeeded (and, under mutual TLS, Node verified the client certificate). */
  attachSecure(tlsSocket: TLSSocket): void {
    if (this.#state === "closed") {
      tlsSocket.destroy();
      return;
    }
    tlsSocket.on("close", () => this.#onClose());
    this.#attach(tlsSocket);
  }

  #attach(socket: Socket): void {
    this.#socket = socket;
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("error", (error: Error) => {
      this.#lastError = error.message;
    });
  }

  /** The authenticated peer's nodeId, once open. */
  get peerNodeId(): string | null {
    return this.#peerNodeId;
  }

  /** The authenticated peer's node name, once open. */
  get peerName(): string | null {
    return this.#peerName;
  }

  get isOpen(): boolean {
    return this.#state === "open";
  }

  /** Closes at once (peer removed, replaced by a newer connection, transport stopping). */
  close(reason: string): Promise<void> {
    const closed = socketClosed(this.#raw);
    if (this.#state === "closed") return closed;
    const wasOpen = this.#state === "open";
    this.#finish("aborted");
    this.#destroy();
    if (wasOpen) this.#emitOpenPeer("disconnected", reason);
    return closed;
  }

  #onData(chunk: Buffer): void {
    this.#context.stats.bytesIn += chunk.length;
    if (this.#state === "closing" || this.#state === "closed") return;
    this.#decoder.push(chunk);
    while (this.#state === "hello" || this.#state === "proof") {
      const message = readHandshakeMessage(this.#decoder);
      if (message.kind === "none") return;
      this.#framesReceived += 1;
      if (message.kind === "garbage") {
        this.#refuse(message.reason, "protocol");
        return;
      }
      if (this.#state === "hello") this.#onHello(message.value);
      else this.#onProof(message.value);
    }
    if (this.#state === "open") this.#receiveSessionFrames();
  }

  #onHello(value: unknown): void {
    const parsed = parseHello(value);
    if (!parsed.ok) {
      this.#refuseHandshake(parsed);
      return;
    }
    const { challenge, pending } = answerHello(
      this.#context.cookieKey,
      { clusterId: this.#context.clusterId, name: this.#context.self.name },
      parsed.hello,
      (fromName) => this.#hooks.refuse(fromName, this.#socket ?? this.#raw),
    );
    this.#pending = pending;
    this.#state = "proof";
    this.#write(challenge);
  }

  #onProof(value: unknown): void {
    const pending = this.#pending;
    if (pending === null) {
      this.#refuse("proof before hello", "protocol");
      return;
    }
    const verified = verifyProof(this.#context.cookieKey, pending, value);
    if (!verified.ok) {
      this.#refuseHandshake(verified);
      return;
    }
    const nodeId = this.#hooks.authenticated(this, verified.peerName);
    if (nodeId === undefined) {
      this.#refuse(`"${verified.peerName}" left the peer set during its handshake`, "auth", AUTH_FAILED);
      return;
    }
    this.#peerNodeId = nodeId;
    this.#peerName = verified.peerName;
    this.#opener = new SessionOpener(verified.sessionKey, "dialer-to-acceptor");
    this.#decoder.frameBytesMax = this.#context.settings.frameBytesMax;
    this.#pending = null;
    this.#state = "open";
    this.#settle("authenticated");
    this.#clearTimer();
    this.#emitOpenPeer("connected");
  }

  #receiveSessionFrames(): void {
    const opener = this.#opener;
    const nodeId = this.#peerNodeId;
    if (opener === null || nodeId === null) return;
    const stats = this.#context.stats;
    while (this.#state === "open") {
      const read = this.#decoder.next();
      if (read.kind === "incomplete") return;
      if (read.kind === "oversized") {
        this.#violation(`frame of ${read.lengthBytes} bytes exceeds frameBytesMax ${read.frameBytesMax}`);
        return;
      }
      const opened = opener.open(read.body);
      if (!opened.ok) {
        this.#violation(opened.reason);
        return;
      }
      for (const payload of opened.payloads) {
        const decoded = decodeMessage(payload);
        if (!decoded.ok) {
          this.#violation(`malformed message: ${decoded.error.message}`);
          return;
        }
        stats.messagesIn += 1;
        this.#hooks.deliver(nodeId, decoded.value);
        // A message delivered may close this connection (peer removed): deliver nothing after.
        if (this.#state !== "open") return;
      }
    }
  }

  /** An authenticated peer broke the session protocol: close without delivering anything more. */
  #violation(reason: string): void {
    this.#context.stats.protocolErrors += 1;
    void this.close(`protocol violation: ${reason}`);
  }

  #refuseHandshake(failure: HandshakeFailure): void {
    if (failure.kind === "version") {
      const wireMessage = `unsupported protocol version; this node speaks ${PROTOCOL_VERSION}`;
      this.#refuse(failure.reason, "protocol", wireMessage);
      return;
    }
    if (failure.kind === "auth") {
      this.#refuse(failure.reason, "auth", AUTH_FAILED);
      return;
    }
    this.#refuse(failure.reason, "protocol");
  }

  /**
   * Ends a handshake that will not succeed. With a `wireMessage` the peer is told (then the
   * socket lingers briefly so it can read it); garbage and timeouts are closed silently.
   */
  #refuse(reason: string, kind: "protocol" | "auth" | "timeout", wireMessage?: string): void {
    if (this.#state === "closing" || this.#state === "closed") return;
    const stats = this.#context.stats;
    if (kind === "auth") stats.authFailures += 1;
    else if (kind === "timeout") stats.handshakeTimeouts += 1;
    else stats.protocolErrors += 1;
    this.#context.emit({ type: "auth-failed", peer: this.remoteAddress, direction: "inbound", reason });
    const socket = this.#socket;
    if (wireMessage === undefined || socket === null) {
      this.#finish("failed");
      this.#destroy();
      return;
    }
    this.#settle("failed");
    this.#state = "closing";
    this.#clearTimer();
    this.#write({ error: wireMessage });
    socket.end();
    this.#timer = setTimeout(() => this.#destroy(), REFUSAL_LINGER_MS);
  }

  #onClose(): void {
    if (this.#state === "closed") return;
    if (this.#socket === null && this.#raw.bytesRead > 0 && this.#state === "hello") {
      // The TLS handshake started and failed: a refused or missing client certificate.
      this.#refuse(`TLS handshake failed: ${this.#lastError}`, "auth");
      return;
    }
    const wasOpen = this.#state === "open";
    // A peer that hung up before sending one frame (a port probe) spends no failure token.
    this.#finish(this.#framesReceived === 0 ? "aborted" : "failed");
    if (wasOpen) this.#emitOpenPeer("disconnected", this.#lastError);
  }

  #write(value: unknown): void {
    if (this.#socket !== null) writeHandshakeMessage(this.#socket, value, this.#context.stats);
  }

  #destroy(): void {
    this.#socket?.destroy();
    this.#raw.destroy();
  }

  /** Moves to `closed` once: timers cleared, admission settled, the transport told. */
  #finish(outcome: "failed" | "aborted"): void {
    this.#state = "closed";
    this.#clearTimer();
    this.#settle(outcome);
    this.#hooks.closed(this);
  }

  #settle(outcome: "authenticated" | "failed" | "aborted"): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#admission.settle(this.remoteAddress, outcome);
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #emitOpenPeer(type: "connected" | "disconnected", reason?: string): void {
    const peer = this.#peerNodeId ?? this.remoteAddress;
    const event = { type, peer, direction: "inbound" as const };
    this.#context.emit(reason === undefined ? event : { ...event, reason });
  }
}

/** Identifies a live accepted connection (a TLS socket reports its raw socket's address and port). */
export function socketKey(socket: Socket): string {
  return `${socket.remoteAddress}|${socket.remotePort}`;
}

/**
 * The sending side of the link to one peer: a bounded queue of encoded messages and the one
 * connection we dial to that peer and use only for sending (the peer's messages to us come on
 * the connection it dials; see DESIGN.md).
 *
 * States: idle → connecting (TCP/TLS + cookie handshake, bounded by a timeout) → open → on any
 * failure backoff (exponential, jittered, bounded) → connecting again if messages are waiting,
 * else idle. Dialing is lazy: the first message queued for an idle link dials.
 * Writes are batched per run of synchronous code: `enqueue` schedules one flush (a microtask)
 * that seals and writes everything queued under `cork`/`uncork`, so the messages one piece of
 * code sends together (a Ready's appends, a loop turn's forwards) leave in one write, in one
 * frame under one tag. Not later:
 * with a flush at the next event-loop turn (setImmediate) a leader's appends waited for the turn
 * after its Ready, 0.1–0.4 ms at one write in flight (see src/runtime/DESIGN.md).
 */
import { connect as connectTcp, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";
import { assert } from "../../lib/assert.ts";
import type { PeerAddress } from "../../ports/transport.ts";
import {
  type ConnectionContext,
  HANDSHAKE_FRAME_BYTES_MAX,
  readHandshakeMessage,
  socketClosed,
  writeHandshakeMessage,
} from "./connection-context.ts";
import { FrameDecoder } from "./frame-codec.ts";
import { answerChallenge, createHello, type Hello } from "./handshake.ts";
import { PART_HEADER_BYTES, SESSION_HEADER_BYTES, SessionSealer } from "./session.ts";
import { clientTlsOptions } from "./tls-identity.ts";

/** Payloads below this size share a frame (copied into it); larger ones are written as is. */
const COALESCE_PAYLOAD_BYTES_MAX = 16 * 1024;
/** Most bytes of messages in one shared frame. */
const COALESCED_WRITE_BYTES = 64 * 1024;
/** Idle sockets are probed so that a vanished peer is noticed. */
const KEEPALIVE_INITIAL_DELAY_MS = 10_000;

/** A connection that stays open this long is healthy: its failure starts the backoff afresh. */
const stableConnectionMs = 1000;

type LinkState = "idle" | "connecting" | "open" | "backoff" | "closed";

export class OutboundLink {
  readonly peer: PeerAddress;
  readonly #context: ConnectionContext;
  #state: LinkState = "idle";
  readonly #queue: Uint8Array[] = [];
  #queueHead = 0;
  #queuedBytes = 0;
  #socket: Socket | null = null;
  #sealer: SessionSealer | null = null;
  #timer: NodeJS.Timeout | null = null;
  #flushScheduled = false;
  #turnFlushScheduled = false;
  #failedAttempts = 0;
  #openedAtMs = 0;
  #sentAtMs = 0;

  constructor(context: ConnectionContext, peer: PeerAddress) {
    this.#context = context;
    this.peer = peer;
  }

  get state(): LinkState {
    return this.#state;
  }

  /** When the current connection opened (performance.now(); 0 before the first). */
  get openedAtMs(): number {
    return this.#openedAtMs;
  }

  /** When a message was last queued (performance.now()). */
  get sentAtMs(): number {
    return this.#sentAtMs;
  }

  /** Drops an open connection as failed (unsent messages stay queued) and redials after the backoff. */
  reset(reason: string): void {
    if (this.#state === "open") this.#fail(reason, "network");
  }

  /**
   * The peer just connected to us and authenticated, so it is up: a link waiting out its backoff
   * dials now, the backoff reset. Why: a member that restarted heard nothing from its primary
   * until the primary's next try, up to `reconnectDelayMsMax` (2 s) later — restart to serving
   * took 1.2–2.7 s in the failover bench, etcd's 0.5 s. A peer that cannot authenticate (another
   * cookie) never gets here, so it cannot make us redial in a loop.
   */
  peerIsBack(): void {
    if (this.#state !== "backoff") return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#failedAttempts = 0;
    if (this.#queueHead < this.#queue.length) this.#dial();
    else this.#state = "idle";
  }

  /**
   * Queues an encoded message; false (and counted) when the queue is full or the link closed.
   * `coalesce`: it may wait for the end of this event-loop turn (SendOptions.coalesce).
   */
  enqueue(body: Uint8Array, coalesce = false): boolean {
    const { sendQueueMessagesMax, sendQueueBytesMax } = this.#context.settings;
    const queuedMessages = this.#queue.length - this.#queueHead;
    if (
      this.#state === "closed" ||
      queuedMessages >= sendQueueMessagesMax ||
      this.#queuedBytes + body.length > sendQueueBytesMax
    ) {
      this.#context.stats.messagesDropped += 1;
      return false;
    }
    this.#queue.push(body);
    this.#queuedBytes += body.length;
    this.#sentAtMs = performance.now();
    if (this.#state === "idle") this.#dial();
    else if (this.#state === "open") {
      if (coalesce) this.#scheduleTurnFlush();
      else this.#scheduleFlush();
    }
    return true;
  }

  /**
   * Closes the link for good (peer removed, transport stopping); queued messages are dropped.
   * Resolves once the socket, if any, is closed.
   */
  close(): Promise<void> {
    if (this.#state === "closed") return Promise.resolve();
    const wasOpen = this.#state === "open";
    const closed = socketClosed(this.#socket);
    this.#state = "closed";
    this.#context.stats.messagesDropped += this.#queue.length - this.#queueHead;
    this.#queue.length = 0;
    this.#queueHead = 0;
    this.#queuedBytes = 0;
    this.#teardown();
    if (wasOpen) this.#emit("disconnected", "link closed locally");
    return closed;
  }

  #dial(): void {
    assert(this.#state === "idle" || this.#state === "backoff", () => `dial from state ${this.#state}`);
    this.#state = "connecting";
    const { host, port, name } = this.peer;
    const tls = this.#context.clientTls;
    const socket =
      tls === undefined
        ? connectTcp({ host, port })
        : connectTls({ host, port, ...clientTlsOptions(tls, name) });
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, KEEPALIVE_INITIAL_DELAY_MS);
    this.#timer = setTimeout(
      () => this.#fail("handshake timed out", "timeout"),
      this.#context.settings.handshakeTimeoutMs,
    );
    const hello = createHello({
      clusterId: this.#context.clusterId,
      fromName: this.#context.self.name,
      toName: name,
    });
    const decoder = new FrameDecoder({ frameBytesMax: HANDSHAKE_FRAME_BYTES_MAX });
    socket.once(tls === undefined ? "connect" : "secureConnect", () =>
      writeHandshakeMessage(socket, hello, this.#context.stats),
    );
    socket.on("data", (chunk: Buffer) => {
      if (socket !== this.#socket) return;
      this.#context.stats.bytesIn += chunk.length;
      decoder.push(chunk);
      this.#onHandshakeData(decoder, hello);
    });
    let lastError = "connection closed by the peer";
    // With TLS, a failure after the TCP connect and before the TLS handshake completes is the
    // peer's certificate (or ours) being refused: an authentication failure, not a network one.
    let tlsPending = false;
    socket.once("connect", () => {
      tlsPending = tls !== undefined;
    });
    socket.once("secureConnect", () => {
      tlsPending = false;
    });
    socket.on("error", (error: Error) => {
      lastError = tlsPending ? `TLS handshake failed: ${error.message}` : error.message;
    });
    socket.on("close", () => {
      if (socket === this.#socket) this.#fail(lastError, tlsPending ? "auth" : "network");
    });
    socket.on("drain", () => {
      if (socket === this.#socket) this.#flushNow();
    });
  }

  #onHandshakeData(decoder: FrameDecoder, hello: Hello): void {
    for (;;) {
      const message = readHandshakeMessage(decoder);
      if (message.kind === "none") return;
      if (message.kind === "garbage") {
        this.#fail(message.reason, "protocol");
        return;
      }
      if (this.#state === "open") {
        // The acceptor says nothing after the handshake, except to refuse our proof.
        const refusal = refusalOf(message.value);
        if (refusal !== undefined) {
          this.#fail(`peer refused our proof: ${refusal}`, "auth");
          return;
        }
        this.#fail("peer sent data after the handshake", "protocol");
        return;
      }
      const answer = answerChallenge(this.#context.cookieKey, hello, message.value);
      if (!answer.ok) {
        this.#fail(answer.reason, answer.kind === "protocol" ? "protocol" : "auth");
        return;
      }
      const socket = this.#socket;
      assert(socket !== null, "handshake data without a socket");
      writeHandshakeMessage(socket, answer.proof, this.#context.stats);
      this.#sealer = new SessionSealer(answer.sessionKey, "dialer-to-acceptor");
      this.#state = "open";
      this.#openedAtMs = performance.now();
      this.#clearTimer();
      this.#emit("connected");
      this.#flushNow();
    }
  }

  /** Writes what is queued now rather than at the flush scheduled for it (Transport.flush). */
  flush(): void {
    if (this.#flushScheduled) this.#flushNow();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(() => {
      if (this.#flushScheduled) this.#flushNow();
    });
  }

  /** Flushes at the end of this event-loop turn (setImmediate), unless a sooner flush writes first. */
  #scheduleTurnFlush(): void {
    if (this.#flushScheduled || this.#turnFlushScheduled) return;
    this.#turnFlushScheduled = true;
    setImmediate(() => {
      this.#turnFlushScheduled = false;
      if (this.#queueHead < this.#queue.length) this.#flushNow();
    });
  }

  /**
   * Seals and writes queued messages until the queue is empty or the socket buffer is full.
   * Small messages share a frame (one tag, one buffer) up to ~64 KiB; a large one gets a frame
   * of its own and is written as it is, after its header, to avoid a copy.
   */
  #flushNow(): void {
    this.#flushScheduled = false;
    const socket = this.#socket;
    const sealer = this.#sealer;
    if (this.#state !== "open" || socket === null || sealer === null) return;
    const { socketBufferBytesMax, frameBytesMax } = this.#context.settings;
    const groupBytesMax = Math.min(COALESCED_WRITE_BYTES, frameBytesMax - SESSION_HEADER_BYTES);
    const stats = this.#context.stats;
    const group: Uint8Array[] = [];
    let groupBytes = 0;
    const writeFrame = (payloads: Uint8Array[]) => {
      stats.framesOut += 1;
      for (const chunk of sealer.seal(payloads)) {
        socket.write(chunk);
        stats.bytesOut += chunk.length;
      }
    };
    const writeGroup = () => {
      if (group.length > 0) writeFrame(group);
      group.length = 0;
      groupBytes = 0;
    };
    socket.cork();
    while (
      this.#queueHead < this.#queue.length &&
      socket.writableLength + groupBytes < socketBufferBytesMax
    ) {
      const body = this.#queue[this.#queueHead] as Uint8Array;
      this.#queue[this.#queueHead] = EMPTY;
      this.#queueHead += 1;
      this.#queuedBytes -= body.length;
      if (body.length >= COALESCE_PAYLOAD_BYTES_MAX) {
        writeGroup();
        writeFrame([body]);
      } else {
        if (groupBytes + PART_HEADER_BYTES + body.length > groupBytesMax) writeGroup();
        group.push(body);
        groupBytes += PART_HEADER_BYTES + body.length;
      }
      stats.messagesOut += 1;
    }
    writeGroup();
    socket.uncork();
    this.#compactQueue();
    // Anything left waits for `drain`, which the socket emits once its buffer empties.
  }

  #compactQueue(): void {
    if (this.#queueHead === this.#queue.length) {
      this.#queue.length = 0;
      this.#queueHead = 0;
    } else if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#queueHead);
      this.#queueHead = 0;
    }
  }

  #fail(reason: string, kind: "network" | "timeout" | "protocol" | "auth"): void {
    if (this.#state === "closed" || this.#socket === null) return;
    const wasOpen = this.#state === "open";
    this.#teardown();
    const stats = this.#context.stats;
    if (kind === "auth") stats.authFailures += 1;
    if (kind === "protocol") stats.protocolErrors += 1;
    if (kind === "timeout") stats.handshakeTimeouts += 1;
    if (kind === "auth") this.#emit("auth-failed", reason);
    else if (wasOpen) this.#emit("disconnected", reason);
    // The acceptor never confirms our proof: a peer that refuses it just closes the socket.
    // So only a connection that stayed up a while counts as healthy and resets the backoff;
    // otherwise a peer with another cookie would be redialed every few milliseconds.
    if (wasOpen && performance.now() - this.#openedAtMs >= stableConnectionMs) this.#failedAttempts = 0;
    this.#failedAttempts += 1;
    this.#state = "backoff";
    this.#timer = setTimeout(() => this.#afterBackoff(), this.#backoffDelayMs());
  }

  #afterBackoff(): void {
    this.#timer = null;
    if (this.#state !== "backoff") return;
    if (this.#queueHead < this.#queue.length) this.#dial();
    else this.#state = "idle";
  }

  /** Full jitter over an exponentially growing, capped window (never below the minimum). */
  #backoffDelayMs(): number {
    const { reconnectDelayMsMin, reconnectDelayMsMax } = this.#context.settings;
    const exponent = Math.min(this.#failedAttempts - 1, 30);
    const windowMs = Math.min(reconnectDelayMsMax, reconnectDelayMsMin * 2 ** exponent);
    return reconnectDelayMsMin + Math.random() * (windowMs - reconnectDelayMsMin);
  }

  #teardown(): void {
    this.#clearTimer();
    this.#flushScheduled = false;
    const socket = this.#socket;
    this.#socket = null;
    this.#sealer = null;
    socket?.destroy();
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #emit(type: "connected" | "disconnected" | "auth-failed", reason?: string): void {
    const event = { type, peer: this.peer.nodeId, direction: "outbound" as const };
    this.#context.emit(reason === undefined ? event : { ...event, reason });
  }
}

const EMPTY = new Uint8Array(0);

function refusalOf(value: unknown): string | undefined {
  const error =
    typeof value === "object" && value !== null ? (value as { error?: unknown }).error : undefined;
  return typeof error === "string" ? error.slice(0, 100) : undefined;
}

/**
 * The transport port: how a node sends opaque messages (Raft `Message`s and anything else that
 * msgpack can encode) to the other members of its cluster.
 *
 * Contract, shared by every adapter (TCP/TLS and the in-memory twin; see
 * test/transport/transport-compliance.ts):
 * - Delivery is best-effort and at-most-once: a message may be lost (peer down, queue full,
 *   connection reset, authentication failure) but is never delivered twice, and never delivered
 *   from a node that is not in the receiver's peer set. Raft tolerates loss; it resends.
 * - Per-peer FIFO: messages from one sender to one receiver that arrive, arrive in send order.
 * - `send` never throws and never blocks: it queues (bounded) and returns at once. `false` means
 *   the message was dropped now (unknown peer, queue full, too large, not encodable, stopped).
 *   `true` means "queued", not "delivered".
 * - The transport carries values, it does not interpret them: the receiver gets a structural
 *   copy (Uint8Array fields arrive as Uint8Array), never the sender's object.
 * - Peer events are for observability (logs, health pages); correctness must not depend on them.
 * - Handlers are called synchronously from the transport's I/O callbacks and must not throw: an
 *   exception is a bug and propagates (fail-stop).
 *
 * @example
 * ```ts
 * transport.onMessage((from, message) => node.step(message as Message));
 * await transport.start();
 * transport.setPeers(members);
 * transport.send("node-2", { type: "heartbeat", ... }); // true: queued
 * ```
 */

/** Where a cluster member listens, and who it is. */
export interface PeerAddress {
  /** The member's permanent id (what Raft calls it). Messages are addressed and attributed by it. */
  readonly nodeId: string;
  /** The member's node name, `name@host`: what the handshake (and mutual TLS) authenticates. */
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

/** Something happened to the link with a peer. `peer` is a nodeId, or a remote address when unknown. */
export interface PeerEvent {
  readonly type: "connected" | "disconnected" | "auth-failed";
  readonly peer: string;
  /** Which connection: the one we dial to send, or the one the peer dialed to send to us. */
  readonly direction: "outbound" | "inbound";
  /** Why, in plain words (local only: the remote side is never told more than "auth failed"). */
  readonly reason?: string;
}

/** How a message may be written. */
export interface SendOptions {
  /**
   * The message may wait until the end of the current event-loop turn (instead of until the
   * sending code yields) to share a frame with what other callbacks of the turn send. For
   * messages sent one per client request (a secondary's forwards): at 64 writes in flight a
   * secondary wrote 1.13 messages per frame without it.
   */
  readonly coalesce?: boolean;
}

/** Counters since start; all monotonic. */
export interface TransportStats {
  readonly messagesOut: number;
  /** Frames written: messages sent together share one (messagesOut / framesOut is how many). */
  readonly framesOut: number;
  readonly messagesIn: number;
  readonly bytesOut: number;
  readonly bytesIn: number;
  /** Messages `send` refused or that were discarded before being written (queue full, stop, removal). */
  readonly messagesDropped: number;
  /** Handshakes that failed authentication (wrong cookie, unknown node name, wrong cluster). */
  readonly authFailures: number;
  /** Connections closed for a protocol violation: garbage, oversized or malformed frames, bad MACs. */
  readonly protocolErrors: number;
  /** Connections closed at once by admission control (pending-handshake cap or rate limit). */
  readonly connectionsRejected: number;
  /** Handshakes that did not finish in time (half-open or stalled connections). */
  readonly handshakeTimeouts: number;
  /** Open connections redialed because the peer answered nothing we sent for a while (a partition that healed). */
  readonly stalledLinksReset: number;
}

/** Sends and receives messages between cluster members. See the module comment for the contract. */
export interface Transport {
  /** Starts listening (when the adapter listens). Resolves once `localAddress` is known. */
  start(): Promise<void>;
  /** Closes every connection and the listener, drops queued messages; no delivery after it resolves. Idempotent. */
  stop(): Promise<void>;
  /**
   * The current membership: the only nodes we send to and accept messages from. Replaces the
   * previous set; links to removed peers are closed. The local node may be included (it is ignored).
   * Throws CONCLAVE_PEERS_INVALID for a peer listed twice or without a usable address.
   */
  setPeers(peers: readonly PeerAddress[]): void;
  /** Queues `message` for `to` (a nodeId). `false` = dropped now. Never throws. */
  send(to: string, message: unknown, options?: SendOptions): boolean;
  /** Sets the one handler that receives every message, with the sender's nodeId. */
  onMessage(handler: (from: string, message: unknown) => void): void;
  /** Sets the one handler of peer events (optional: an adapter may have nothing to report). */
  onPeerEvent?(handler: (event: PeerEvent) => void): void;
  /** Counters, for health pages and tests. */
  stats(): TransportStats;
  /**
   * Writes what `send` queued so far now, instead of once the calling code yields (optional: an
   * adapter that delivers later anyway has nothing to gain). The runtime calls it when a message
   * must not wait behind the work it does next (a follower's acknowledgement, before it applies).
   */
  flush?(): void;
  /** The address we listen on once started (with the real port when 0 was asked), else null. */
  readonly localAddress: { readonly host: string; readonly port: number } | null;
}

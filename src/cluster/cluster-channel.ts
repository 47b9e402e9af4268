/**
 * One transport, two kinds of traffic: the runtime's (Raft and forwarding) and the cluster
 * tasks' (pings with clocks, join requests). `ChannelTransport` wraps the node's transport and
 * hands messages marked `channel: "cluster"` to the cluster handler; everything else goes to
 * the runtime — except messages from guests (cookie-authenticated nodes outside the peer set,
 * see TcpTransport `admitGuests`), which may only use the cluster channel.
 *
 * @example
 * ```ts
 * const channel = new ChannelTransport(tcpTransport);
 * channel.onClusterMessage((from, message) => joinProtocol.receive(from, message));
 * new RaftRuntime({ transport: channel, ... });
 * channel.sendCluster("n2", { type: "ping", sentAtMs: Date.now() });
 * ```
 */
import type { PeerAddress, PeerEvent, SendOptions, Transport, TransportStats } from "../ports/transport.ts";

/** A cluster-channel message: an object with a `type`. */
export interface ClusterMessage {
  readonly type: string;
  readonly [field: string]: unknown;
}

const channelName = "cluster";
const guestPrefix = "guest:";

/** True when `from` is a guest id (a node outside the peer set, e.g. one asking to join). */
export function isGuest(from: string): boolean {
  return from.startsWith(guestPrefix);
}

/** The node name of a guest id. */
export function guestNodeName(from: string): string {
  return from.slice(guestPrefix.length);
}

/** Splits one transport into the runtime's traffic and the cluster channel. See the module comment. */
export class ChannelTransport implements Transport {
  readonly #inner: Transport;
  #runtimeHandler: ((from: string, message: unknown) => void) | null = null;
  #clusterHandler: ((from: string, message: ClusterMessage) => void) | null = null;
  #guestMessagesDropped = 0;

  constructor(inner: Transport) {
    this.#inner = inner;
    inner.onMessage((from, message) => this.#receive(from, message));
  }

  #receive(from: string, message: unknown): void {
    if (isChannelMessage(message)) {
      this.#clusterHandler?.(from, message.body);
      return;
    }
    if (isGuest(from)) {
      this.#guestMessagesDropped++;
      return;
    }
    this.#runtimeHandler?.(from, message);
  }

  /** Sets the handler of cluster-channel messages (`from` may be a guest id). */
  onClusterMessage(handler: (from: string, message: ClusterMessage) => void): void {
    this.#clusterHandler = handler;
  }

  /** Sends a cluster-channel message; `false` when dropped now (unknown peer, queue full). */
  sendCluster(to: string, message: ClusterMessage): boolean {
    return this.#inner.send(to, { channel: channelName, body: message });
  }

  /** Messages from guests that were not on the cluster channel (dropped). */
  get guestMessagesDropped(): number {
    return this.#guestMessagesDropped;
  }

  start(): Promise<void> {
    return this.#inner.start();
  }

  stop(): Promise<void> {
    return this.#inner.stop();
  }

  setPeers(peers: readonly PeerAddress[]): void {
    this.#inner.setPeers(peers);
  }

  send(to: string, message: unknown, options?: SendOptions): boolean {
    return this.#inner.send(to, message, options);
  }

  onMessage(handler: (from: string, message: unknown) => void): void {
    this.#runtimeHandler = handler;
  }

  onPeerEvent(handler: (event: PeerEvent) => void): void {
    this.#inner.onPeerEvent?.(handler);
  }

  flush(): void {
    this.#inner.flush?.();
  }

  stats(): TransportStats {
    return this.#inner.stats();
  }

  get localAddress(): { readonly host: string; readonly port: number } | null {
    return this.#inner.localAddress;
  }
}

function isChannelMessage(value: unknown): value is { channel: "cluster"; body: ClusterMessage } {
  if (value === null || typeof value !== "object") return false;
  const candidate = value as { channel?: unknown; body?: unknown };
  return (
    candidate.channel === channelName &&
    candidate.body !== null &&
    typeof candidate.body === "object" &&
    typeof (candidate.body as { type?: unknown }).type === "string"
  );
}

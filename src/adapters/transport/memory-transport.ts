/**
 * The in-memory twin of the TCP transport, for tests of the layers above it. Transports attached
 * to one {@link MemoryNetwork} reach each other by nodeId. It keeps the same contract as the
 * TCP transport (it passes the same compliance suite): delivery is asynchronous (a later
 * event-loop turn), per-peer FIFO, at-most-once; messages go through the same msgpack codec,
 * so the receiver gets a copy and an unencodable message is refused exactly as over TCP; a
 * receiver accepts only senders in its peer set; queues are bounded.
 *
 * @example
 * ```ts
 * const network = new MemoryNetwork();
 * const a = new MemoryTransport(network, { self: { nodeId: "a", name: "a@mem" } });
 * ```
 */
import type {
  PeerAddress,
  PeerEvent,
  SendOptions,
  Transport,
  TransportStats,
} from "../../ports/transport.ts";
import { emptyStats, type MutableStats } from "./connection-context.ts";
import { decodeMessage, encodeMessage } from "./message-codec.ts";

/** Connects {@link MemoryTransport}s of one test. */
export class MemoryNetwork {
  readonly #transports = new Map<string, MemoryTransport>();

  /** @internal used by MemoryTransport.start/stop */
  attach(nodeId: string, transport: MemoryTransport): void {
    if (this.#transports.has(nodeId)) throw new Error(`node "${nodeId}" is already on this memory network`);
    this.#transports.set(nodeId, transport);
  }

  /** @internal */
  detach(nodeId: string, transport: MemoryTransport): void {
    if (this.#transports.get(nodeId) === transport) this.#transports.delete(nodeId);
  }

  /** @internal */
  find(nodeId: string): MemoryTransport | undefined {
    return this.#transports.get(nodeId);
  }
}

export interface MemoryTransportOptions {
  readonly self: { readonly nodeId: string; readonly name: string };
  /** Per-peer queue bound (default 4096 messages). */
  readonly sendQueueMessagesMax?: number;
}

export class MemoryTransport implements Transport {
  readonly #network: MemoryNetwork;
  readonly #self: { readonly nodeId: string; readonly name: string };
  readonly #queueMessagesMax: number;
  readonly #stats: MutableStats = emptyStats();
  readonly #queues = new Map<string, Uint8Array[]>();
  #state: "new" | "started" | "stopped" = "new";
  #peers = new Map<string, PeerAddress>();
  #flush: NodeJS.Immediate | null = null;
  #messageHandler: ((from: string, message: unknown) => void) | null = null;
  #eventHandler: ((event: PeerEvent) => void) | null = null;

  constructor(network: MemoryNetwork, options: MemoryTransportOptions) {
    this.#network = network;
    this.#self = options.self;
    this.#queueMessagesMax = options.sendQueueMessagesMax ?? 4096;
  }

  get localAddress(): { host: string; port: number } | null {
    return this.#state === "started" ? { host: "memory", port: 0 } : null;
  }

  async start(): Promise<void> {
    if (this.#state !== "new") throw new Error("a transport starts once");
    this.#network.attach(this.#self.nodeId, this);
    this.#state = "started";
  }

  async stop(): Promise<void> {
    if (this.#state === "stopped") return;
    this.#state = "stopped";
    this.#network.detach(this.#self.nodeId, this);
    if (this.#flush !== null) clearImmediate(this.#flush);
    this.#flush = null;
    for (const queue of this.#queues.values()) this.#stats.messagesDropped += queue.length;
    this.#queues.clear();
  }

  setPeers(peers: readonly PeerAddress[]): void {
    this.#peers = new Map(
      peers.filter((peer) => peer.nodeId !== this.#self.nodeId).map((peer) => [peer.nodeId, peer]),
    );
    for (const nodeId of this.#queues.keys()) {
      if (!this.#peers.has(nodeId)) {
        this.#stats.messagesDropped += this.#queues.get(nodeId)?.length ?? 0;
        this.#queues.delete(nodeId);
      }
    }
  }

  /** `options` changes nothing here: every message is delivered at the next turn anyway. */
  send(to: string, message: unknown, _options?: SendOptions): boolean {
    const encoded = this.#state === "started" && this.#peers.has(to) ? encodeMessage(message) : null;
    let queue = this.#queues.get(to);
    if (encoded === null || !encoded.ok || (queue?.length ?? 0) >= this.#queueMessagesMax) {
      this.#stats.messagesDropped += 1;
      return false;
    }
    if (queue === undefined) {
      queue = [];
      this.#queues.set(to, queue);
    }
    queue.push(encoded.value);
    this.#flush ??= setImmediate(() => this.#deliverQueued());
    return true;
  }

  onMessage(handler: (from: string, message: unknown) => void): void {
    this.#messageHandler = handler;
  }

  onPeerEvent(handler: (event: PeerEvent) => void): void {
    this.#eventHandler = handler;
  }

  stats(): TransportStats {
    return { ...this.#stats };
  }

  #deliverQueued(): void {
    this.#flush = null;
    const queues = [...this.#queues];
    this.#queues.clear();
    for (const [to, bodies] of queues) {
      const receiver = this.#network.find(to);
      for (const body of bodies) {
        if (this.#state !== "started") return;
        const delivered = receiver?.receive(this.#self, body) ?? false;
        if (delivered) {
          this.#stats.messagesOut += 1;
          this.#stats.framesOut += 1; // no frames here: one delivery per message
          this.#stats.bytesOut += body.length;
        } else {
          this.#stats.messagesDropped += 1;
        }
      }
    }
  }

  /** @internal called by a sender on the same network; false when refused. */
  receive(from: { readonly nodeId: string; readonly name: string }, body: Uint8Array): boolean {
    if (this.#state !== "started") return false;
    const peer = this.#peers.get(from.nodeId);
    if (peer === undefined || peer.name !== from.name) {
      this.#stats.authFailures += 1;
      this.#eventHandler?.({
        type: "auth-failed",
        peer: from.nodeId,
        direction: "inbound",
        reason: "not a peer",
      });
      return false;
    }
    const decoded = decodeMessage(body);
    if (!decoded.ok) return false;
    this.#stats.messagesIn += 1;
    this.#stats.bytesIn += body.length;
    this.#messageHandler?.(from.nodeId, decoded.value);
    return true;
  }
}

/**
 * Who the transport talks to. The peer set is the union of:
 * - the replicated member list (each member's announced cluster address) — the truth once known;
 * - the static `cluster.members` of the configuration (how a cluster starts), minus members
 *   force-removed since (their tombstone names them);
 * - short-lived entries: a join target a joiner dials, a joiner the target answers, the member
 *   list a joiner was handed — each expires (default 10 min) once the replicated list has it.
 * An id in several sources takes the first source's address in that order. The set is pushed
 * to the transport only when it changed.
 *
 * @example
 * ```ts
 * const peers = new PeerDirectory({ selfId: "n4", staticPeers, metadata, apply: (list) => transport.setPeers(list) });
 * peers.refresh();                        // after every applied cluster change
 * peers.addTemporary(targetAddress, 60_000);
 * ```
 */
import type { ClusterMetadata } from "../ports/cluster-metadata.ts";
import type { PeerAddress } from "../ports/transport.ts";

export interface PeerDirectoryOptions {
  readonly selfId: string;
  readonly staticPeers: readonly PeerAddress[];
  readonly metadata: ClusterMetadata;
  /** Receives the new peer set (e.g. `transport.setPeers`). */
  readonly apply: (peers: readonly PeerAddress[]) => void;
  readonly nowMs: () => number;
}

/** Most temporary entries kept (joins are rare; this bounds a flood of join requests). */
const temporaryPeersMax = 64;

/** Computes and applies the transport's peer set. See the module comment. */
export class PeerDirectory {
  readonly #options: PeerDirectoryOptions;
  readonly #temporary = new Map<string, { peer: PeerAddress; expiresAtMs: number }>();
  #current: readonly PeerAddress[] = [];
  #currentKey = "";

  constructor(options: PeerDirectoryOptions) {
    this.#options = options;
  }

  /** The peer set as last applied. */
  get peers(): readonly PeerAddress[] {
    return this.#current;
  }

  /** The address of `id` in the current peer set, or null. */
  address(id: string): PeerAddress | null {
    return this.#current.find((peer) => peer.nodeId === id) ?? null;
  }

  /** Adds (or extends) a short-lived entry, then refreshes. Returns false when the table is full. */
  addTemporary(peer: PeerAddress, ttlMs: number): boolean {
    this.#dropExpired();
    if (!this.#temporary.has(peer.nodeId) && this.#temporary.size >= temporaryPeersMax) return false;
    this.#temporary.set(peer.nodeId, { peer, expiresAtMs: this.#options.nowMs() + ttlMs });
    this.refresh();
    return true;
  }

  #dropExpired(): void {
    const now = this.#options.nowMs();
    for (const [id, entry] of this.#temporary) if (entry.expiresAtMs <= now) this.#temporary.delete(id);
  }

  /** Recomputes the peer set from the sources; applies it when it changed. */
  refresh(): void {
    this.#dropExpired();
    const { metadata, selfId, staticPeers } = this.#options;
    const removedIds = new Set(metadata.removed().map((node) => node.raftId));
    const chosen = new Map<string, PeerAddress>();
    const names = new Set<string>();
    const offer = (peer: PeerAddress): void => {
      if (peer.nodeId === selfId || chosen.has(peer.nodeId) || names.has(peer.name)) return;
      chosen.set(peer.nodeId, peer);
      names.add(peer.name);
    };
    for (const member of metadata.members()) {
      offer({
        nodeId: member.raftId,
        name: member.nodeName,
        host: member.clusterHost,
        port: member.clusterPort,
      });
    }
    for (const peer of staticPeers) if (!removedIds.has(peer.nodeId)) offer(peer);
    for (const { peer } of this.#temporary.values()) offer(peer);
    const next = [...chosen.values()];
    const key = JSON.stringify(next);
    if (key === this.#currentKey) return;
    this.#current = next;
    this.#currentKey = key;
    this.#options.apply(next);
  }
}

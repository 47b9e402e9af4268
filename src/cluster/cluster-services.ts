/**
 * The cluster tasks of one node, wired together: member pings (clock offsets, contact), the
 * peer directory (who the transport talks to), the join protocol, the self-announcer, the
 * primary's membership reconciler, and the operations the HTTP API exposes. The composition
 * root builds one per node and starts it after the runtime.
 *
 * @example
 * ```ts
 * const services = new ClusterServices({ channel, runtime, database, logger, selfRecord, staticPeers, defaultClusterPort });
 * await runtime.start();
 * services.start();
 * services.status(); // ClusterStatusView
 * services.stop();
 * ```
 */
import type { MemberRecord } from "../ports/cluster-metadata.ts";
import type { Database } from "../ports/database.ts";
import type { Logger } from "../ports/logger.ts";
import type { PeerAddress } from "../ports/transport.ts";
import type { RaftRuntime } from "../runtime/raft-runtime.ts";
import type { ChannelTransport } from "./cluster-channel.ts";
import { ClusterOperations } from "./cluster-operations.ts";
import { type ClusterStatusView, clusterStatus, selfProblem, selfState } from "./cluster-status.ts";
import { JoinProtocol } from "./join-protocol.ts";
import { MemberAnnouncer } from "./member-announcer.ts";
import { MemberPings } from "./member-pings.ts";
import { MembershipReconciler } from "./membership-reconciler.ts";
import { PeerDirectory } from "./peer-directory.ts";

export interface ClusterServicesOptions {
  readonly channel: ChannelTransport;
  readonly runtime: RaftRuntime;
  readonly database: Database;
  readonly logger: Logger;
  readonly selfRecord: MemberRecord;
  /** The configured static member list, in order (this node included when listed). */
  readonly staticPeers: readonly PeerAddress[];
  readonly defaultClusterPort: number;
  /** This node's wall clock, ms since the epoch (pings measure the members' offsets with it). */
  readonly wallClockMs: () => number;
}

/** See the module comment. */
export class ClusterServices {
  readonly pings: MemberPings;
  readonly peers: PeerDirectory;
  readonly joins: JoinProtocol;
  readonly operations: ClusterOperations;
  readonly #announcer: MemberAnnouncer;
  readonly #reconciler: MembershipReconciler;
  readonly #options: ClusterServicesOptions;
  #unlisten: (() => void) | null = null;
  #unlistenRole: (() => void) | null = null;

  constructor(options: ClusterServicesOptions) {
    this.#options = options;
    const { channel, runtime, database, logger, selfRecord } = options;
    const metadata = database.cluster;
    const encode = database.encodeCommand;
    const send = (to: string, message: { readonly type: string }) => channel.sendCluster(to, message);
    this.peers = new PeerDirectory({
      selfId: selfRecord.raftId,
      staticPeers: options.staticPeers,
      metadata,
      apply: (peers) => channel.setPeers(peers),
      nowMs: () => performance.now(),
    });
    this.pings = new MemberPings({
      send,
      wallClockMs: options.wallClockMs,
      monotonicMs: () => performance.now(),
      self: () => ({
        state: this.selfState(),
        applied: runtime.status().applied,
        commit: runtime.status().commit,
        problem: selfProblem(runtime),
      }),
      targets: () => this.#pingTargets(),
    });
    this.joins = new JoinProtocol({
      send,
      addTemporaryPeer: (peer, ttlMs) => this.peers.addTemporary(peer, ttlMs),
      peers: () => this.peers.peers,
      selfAddress: () => ({
        nodeId: selfRecord.raftId,
        name: selfRecord.nodeName,
        host: selfRecord.clusterHost,
        port: selfRecord.clusterPort,
      }),
      recordJoin: async (member) => {
        const outcome = await runtime.propose(encode({ kind: "cluster", op: "member-join", member }), {
          forward: true,
        });
        const result = outcome.result as { ok: boolean; error?: { code: string; message: string } };
        if (!result.ok)
          return {
            ok: false,
            code: result.error?.code ?? "CONCLAVE_REFUSED",
            message: result.error?.message ?? "refused",
          };
        await runtime.waitApplied(outcome.index); // so the member list handed back includes the joiner's peers
        return { ok: true };
      },
    });
    this.#announcer = new MemberAnnouncer({ record: selfRecord, runtime, metadata, encode, logger });
    this.#reconciler = new MembershipReconciler({
      runtime,
      metadata,
      encode,
      logger,
      selfId: selfRecord.raftId,
      nowMs: () => performance.now(),
    });
    this.operations = new ClusterOperations({
      selfRecord,
      defaultClusterPort: options.defaultClusterPort,
      runtime,
      metadata,
      encode,
      joins: this.joins,
      pings: this.pings,
      staticName: (raftId) => options.staticPeers.find((peer) => peer.nodeId === raftId)?.name ?? null,
    });
    channel.onClusterMessage((from, message) => {
      if (!this.pings.receive(from, message)) this.joins.receive(from, message);
    });
  }

  #pingTargets(): string[] {
    const { runtime, database, selfRecord } = this.#options;
    if (!runtime.running) return [];
    const { voters, learners } = runtime.status().membership;
    const ids = new Set([
      ...voters,
      ...learners,
      ...database.cluster.members().map((member) => member.raftId),
    ]);
    ids.delete(selfRecord.raftId);
    return [...ids].filter((id) => this.peers.address(id) !== null);
  }

  /** Sets the transport's peers (call before the transport starts). */
  initialPeers(): void {
    this.peers.refresh();
  }

  /** Starts the tasks (after the runtime started). */
  start(): void {
    this.#unlisten = this.#options.database.cluster.listen(() => {
      this.peers.refresh();
      this.#announcer.check();
      this.#reconciler.poke();
    });
    // A node announces itself as soon as it knows a primary, not at the announcer's next
    // second: a first member that became primary and took a joiner within that second was
    // listed after it (the joiner's row took the first position). After the loop's turn: the
    // event comes from inside it.
    this.#unlistenRole = this.#options.runtime.on("role-changed", ({ leader }) => {
      if (leader !== null) setImmediate(() => this.#announcer.check());
    });
    this.peers.refresh();
    this.pings.start();
    this.#announcer.start();
    this.#reconciler.start();
    this.#announcer.check();
  }

  stop(): void {
    this.#unlisten?.();
    this.#unlisten = null;
    this.#unlistenRole?.();
    this.#unlistenRole = null;
    this.pings.stop();
    this.#announcer.stop();
    this.#reconciler.stop();
  }

  /** This node's own state (PRIMARY, SECONDARY, STANDBY, JOINING, CATCHING_UP, RECOVERY, LEAVING, DOWN). */
  selfState(): string {
    const { runtime, database, selfRecord } = this.#options;
    if (!runtime.running) return "DOWN";
    return selfState({
      selfId: selfRecord.raftId,
      raft: runtime.status(),
      running: runtime.running,
      diskFullReason: runtime.diskFullReason,
      metadata: database.cluster,
    });
  }

  /** The view `conclave status` prints. */
  status(): ClusterStatusView {
    const { runtime, database, selfRecord, staticPeers } = this.#options;
    return clusterStatus({
      selfId: selfRecord.raftId,
      raft: runtime.status(),
      running: runtime.running,
      diskFullReason: runtime.diskFullReason,
      snapshotFailureReason: runtime.snapshotFailureReason,
      logFullReason: runtime.logFullReason,
      metadata: database.cluster,
      pings: this.pings,
      staticMembers: staticPeers.map((peer) => ({ raftId: peer.nodeId, nodeName: peer.name })),
      // The pings' contact times are monotonic.
      nowMs: performance.now(),
    });
  }
}

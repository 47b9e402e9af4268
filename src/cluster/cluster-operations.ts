/**
 * The operator's cluster commands as the HTTP API runs them: join, leave, force-leave,
 * set-primary, and the status view. Each refuses what would hurt the cluster with a reason an
 * operator can act on (ConclaveError with a stable code):
 * - a leave or removal that would leave fewer reachable voters than the new quorum
 *   (`CONCLAVE_QUORUM_AT_RISK`, unless `force`); reachability is this node's view from its pings;
 * - set-primary to a standby, a never-primary member, a member that is down or lagging
 *   (`CONCLAVE_TRANSFER_REFUSED`); on a node that is not the primary it throws
 *   `CONCLAVE_NOT_PRIMARY` with the primary's HTTP address, which the route follows.
 *
 * @example
 * ```ts
 * await operations.forceLeave("n3", { force: false });
 * await operations.setPrimary("n2"); // { primary: "n2@10.0.0.6", durationMs: 212 }
 * ```
 */
import { parseMemberAddress } from "../config/node-name.ts";
import { ConclaveError } from "../lib/errors.ts";
import type { ClusterCommand, ClusterMetadata, MemberRecord } from "../ports/cluster-metadata.ts";
import type { PeerAddress } from "../ports/transport.ts";
import type { RaftStatus } from "../raft/index.ts";
import type { RaftRuntime } from "../runtime/raft-runtime.ts";
import type { JoinProtocol } from "./join-protocol.ts";
import type { MemberPings } from "./member-pings.ts";
import { catchUpLagEntries } from "./membership-reconciler.ts";

export interface ClusterOperationsOptions {
  readonly selfRecord: MemberRecord;
  readonly defaultClusterPort: number;
  readonly runtime: Pick<RaftRuntime, "status" | "running" | "propose" | "transferLeadership">;
  readonly metadata: ClusterMetadata;
  readonly encode: (command: ClusterCommand) => Uint8Array;
  readonly joins: JoinProtocol;
  readonly pings: MemberPings;
  /** Resolves a member's `name@host` from the static list when it has no row. */
  readonly staticName: (raftId: string) => string | null;
}

/** How long set-primary waits for the new primary. */
const transferWaitMs = 10_000;

/** See the module comment. */
export class ClusterOperations {
  readonly #options: ClusterOperationsOptions;

  constructor(options: ClusterOperationsOptions) {
    this.#options = options;
  }

  /** Joins the cluster that `target` (`name@host[:port]`) belongs to. */
  async join(target: string, timeoutMs: number): Promise<{ joined: string }> {
    const parsed = parseMemberAddress(target);
    if (!parsed.ok) throw new ConclaveError("CONCLAVE_USAGE", `the join target: ${parsed.message}`);
    const status = this.#options.runtime.status();
    const self = this.#options.selfRecord;
    // A member asking again is harmless (the join is idempotent), and a node removed while it
    // was down still believes it is a member: the cluster's answer says why it cannot come back.
    // Only a primary with followers is sure to be in a cluster.
    if (status.role === "leader" && status.membership.voters.length > 1) {
      throw new ConclaveError(
        "CONCLAVE_ALREADY_MEMBER",
        `${self.nodeName} is the primary of a cluster; to move it, run \`conclave leave\` first`,
      );
    }
    if (parsed.value.name === self.raftId) {
      throw new ConclaveError(
        "CONCLAVE_USAGE",
        `${target} is this node; name a member of the cluster to join`,
      );
    }
    const host = parsed.value.host;
    const peer: PeerAddress = {
      nodeId: parsed.value.name,
      name: `${parsed.value.name}@${host.includes(":") ? `[${host}]` : host}`,
      host,
      port: parsed.value.port ?? this.#options.defaultClusterPort,
    };
    await this.#options.joins.join(peer, self, timeoutMs);
    return { joined: peer.name };
  }

  /** This node leaves the cluster (the primary carries it out). */
  async leave(options: { force: boolean }): Promise<{ leaving: string }> {
    const self = this.#options.selfRecord.raftId;
    if (!this.#isMember(self))
      throw new ConclaveError("CONCLAVE_NOT_MEMBER", "this node is not a member of a cluster");
    this.#checkQuorumAfterRemoving(self, options.force);
    await this.#propose({ kind: "cluster", op: "member-leave", raftId: self, force: false });
    return { leaving: this.#options.selfRecord.nodeName };
  }

  /** Removes another member, typically one that is down; it may not come back with its old identity. */
  async forceLeave(member: string, options: { force: boolean }): Promise<{ removing: string }> {
    const id = this.resolveMember(member);
    if (id === this.#options.selfRecord.raftId) {
      throw new ConclaveError("CONCLAVE_USAGE", "to remove this node, run `conclave leave` on it");
    }
    this.#checkQuorumAfterRemoving(id, options.force);
    await this.#propose({ kind: "cluster", op: "member-leave", raftId: id, force: true });
    return { removing: this.#nameOf(id) };
  }

  /**
   * Makes `member` the primary (run on the primary); resolves once it is, with how long it took.
   * @throws ConclaveError `CONCLAVE_NOT_PRIMARY` (details.leader), `CONCLAVE_TRANSFER_REFUSED`, `CONCLAVE_TIMEOUT`
   */
  async setPrimary(member: string): Promise<{ primary: string; durationMs: number }> {
    const id = this.resolveMember(member);
    const { runtime } = this.#options;
    const status = runtime.status();
    if (status.leader === id) return { primary: this.#nameOf(id), durationMs: 0 };
    if (status.role !== "leader") {
      throw new ConclaveError("CONCLAVE_NOT_PRIMARY", "this node is not the primary", {
        leader: status.leader,
      });
    }
    this.#checkTransferTarget(status, id);
    const started = performance.now();
    await runtime.transferLeadership(id, { timeoutMs: 5000 });
    while (performance.now() - started < transferWaitMs) {
      const now = runtime.running ? runtime.status() : null;
      if (now !== null && now.leader === id && now.role !== "leader") {
        return { primary: this.#nameOf(id), durationMs: Math.round(performance.now() - started) };
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    throw new ConclaveError(
      "CONCLAVE_TIMEOUT",
      `${this.#nameOf(id)} did not become primary within ${transferWaitMs} ms; check \`conclave status\``,
    );
  }

  /**
   * The checks any member can make from the replicated state (before passing set-primary to the
   * primary): a known member, a voter, not never-primary. Throws like {@link setPrimary}.
   */
  precheckTransfer(member: string): void {
    const id = this.resolveMember(member);
    this.#checkEligible(this.#options.runtime.status(), id);
  }

  #checkEligible(status: RaftStatus, id: string): void {
    const row = this.#options.metadata.members().find((entry) => entry.raftId === id);
    if (!status.membership.voters.includes(id) || row?.role === "standby") {
      refuseTransfer(this.#nameOf(id), "it is a standby (it does not vote); only voters can be primary");
    }
    if (row?.neverPrimary === true)
      refuseTransfer(this.#nameOf(id), "it is marked never-primary (node.never_primary)");
  }

  #checkTransferTarget(status: RaftStatus, id: string): void {
    const refuse = (why: string): never => refuseTransfer(this.#nameOf(id), why);
    this.#checkEligible(status, id);
    const peer = status.peers.find((entry) => entry.id === id);
    if (peer === undefined || (!peer.recentActive && !this.#options.pings.reachable(id)))
      refuse("it is not reachable from the primary");
    const lag = status.lastIndex - (peer?.match ?? 0);
    if (lag > catchUpLagEntries) refuse(`it is ${lag} entries behind the primary; wait until it catches up`);
  }

  /** A member's Raft id from `n2` or `n2@host`. Throws `CONCLAVE_MEMBER_UNKNOWN`. */
  resolveMember(text: string): string {
    const id = text.includes("@") ? text.slice(0, text.indexOf("@")) : text;
    if (!this.#isMember(id) && !this.#options.metadata.members().some((member) => member.raftId === id)) {
      throw new ConclaveError(
        "CONCLAVE_MEMBER_UNKNOWN",
        `"${text}" is not a member of this cluster; \`conclave status\` lists the members`,
      );
    }
    return id;
  }

  #isMember(id: string): boolean {
    const { membership } = this.#options.runtime.status();
    return membership.voters.includes(id) || membership.learners.includes(id);
  }

  #nameOf(id: string): string {
    return (
      this.#options.metadata.members().find((member) => member.raftId === id)?.nodeName ??
      this.#options.staticName(id) ??
      id
    );
  }

  /** Refuses (unless `force`) a removal after which the reachable voters could not form a quorum. */
  #checkQuorumAfterRemoving(id: string, force: boolean): void {
    const { voters } = this.#options.runtime.status().membership;
    if (!voters.includes(id)) return; // a standby does not count for quorum
    const remaining = voters.filter((voter) => voter !== id);
    if (remaining.length === 0) {
      throw new ConclaveError(
        "CONCLAVE_QUORUM_AT_RISK",
        `${this.#nameOf(id)} is the last voter; a cluster cannot remove its last voter`,
      );
    }
    const self = this.#options.selfRecord.raftId;
    const reachable = remaining.filter((voter) => voter === self || this.#options.pings.reachable(voter));
    const quorum = Math.floor(remaining.length / 2) + 1;
    if (reachable.length >= quorum || force) return;
    const down = remaining.filter((voter) => !reachable.includes(voter)).map((voter) => this.#nameOf(voter));
    throw new ConclaveError(
      "CONCLAVE_QUORUM_AT_RISK",
      `removing ${this.#nameOf(id)} would leave ${remaining.length} voters needing ${quorum} for a quorum, but only ${reachable.length} are reachable (down: ${down.join(", ")}); bring members back first, or repeat with --force to accept that the cluster may stop accepting writes`,
    );
  }

  async #propose(command: ClusterCommand): Promise<void> {
    const { result } = await this.#options.runtime.propose(this.#options.encode(command), { forward: true });
    const outcome = result as { ok: boolean; error?: { code: string; message: string } };
    if (!outcome.ok) {
      throw new ConclaveError(outcome.error?.code ?? "CONCLAVE_REFUSED", outcome.error?.message ?? "refused");
    }
  }
}

function refuseTransfer(name: string, why: string): never {
  throw new ConclaveError("CONCLAVE_TRANSFER_REFUSED", `${name} cannot become primary: ${why}`);
}

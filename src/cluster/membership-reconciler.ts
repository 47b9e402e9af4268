/**
 * On the primary only: turns what the replicated member list asks for into Raft membership
 * changes, one at a time (the core allows one pending change; each waits for the previous to
 * apply):
 * - a departure (`leave`, `force-leave`): remove the member from the Raft membership — after
 *   handing the primary role away when it is the primary that leaves — then drop its row
 *   (`member-remove`, which leaves a tombstone for a forced removal);
 * - a joiner: add it as a learner (it receives the snapshot and the log), and once its log is
 *   within {@link catchUpLagEntries} of the primary's, promote it (role voter) and mark it active;
 * - a member whose role is standby but which votes (a static member configured as standby):
 *   demote it to learner;
 * - preferences: a primary marked never-primary, or one with a lower priority than a healthy,
 *   caught-up voter, transfers the primary role to that voter (at most once per
 *   {@link preferenceTransferIntervalMs}, so a flapping member cannot bounce the role).
 * Each step is retried on the next pass when it fails (not primary any more, change pending…).
 *
 * @example
 * ```ts
 * const reconciler = new MembershipReconciler({ runtime, metadata, encode, logger, selfId: "n1" });
 * reconciler.start(); // passes every 250 ms and after each cluster change
 * ```
 */
import type { ClusterCommand, ClusterMetadata } from "../ports/cluster-metadata.ts";
import type { Logger } from "../ports/logger.ts";
import type { MembershipChange, PeerStatus, RaftStatus } from "../raft/index.ts";
import type { RaftRuntime } from "../runtime/raft-runtime.ts";

/** A learner within this many entries of the primary's last index counts as caught up. */
export const catchUpLagEntries = 64;
/** Interval between passes. */
const passIntervalMs = 250;
/** Least time between two hand-overs of a leaving (or standby) primary. */
const handOverRetryMs = 2000;
/** Least time between two preference-driven transfers. */
export const preferenceTransferIntervalMs = 10_000;

export interface MembershipReconcilerOptions {
  readonly runtime: Pick<
    RaftRuntime,
    "status" | "running" | "propose" | "proposeMembership" | "transferLeadership"
  >;
  readonly metadata: ClusterMetadata;
  readonly encode: (command: ClusterCommand) => Uint8Array;
  readonly logger: Logger;
  readonly selfId: string;
  readonly nowMs: () => number;
}

type Step = { readonly why: string; readonly run: () => Promise<unknown> };

/** See the module comment. */
export class MembershipReconciler {
  readonly #options: MembershipReconcilerOptions;
  #timer: NodeJS.Timeout | null = null;
  #busy = false;
  #lastPreferenceTransferAtMs = Number.NEGATIVE_INFINITY;
  #lastFailure = "";
  #lastHandOverAtMs = Number.NEGATIVE_INFINITY;

  constructor(options: MembershipReconcilerOptions) {
    this.#options = options;
  }

  start(): void {
    this.#timer ??= setInterval(() => this.poke(), passIntervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Runs a pass now unless one is running. */
  poke(): void {
    if (this.#busy || this.#timer === null) return;
    const { runtime } = this.#options;
    if (!runtime.running || runtime.status().role !== "leader") return;
    const step = this.nextStep(runtime.status());
    if (step === null) return;
    this.#busy = true;
    step
      .run()
      .then(() => {
        this.#options.logger.info({ step: step.why }, "membership step done");
        this.#lastFailure = "";
      })
      .catch((error: unknown) => {
        const text = `${step.why}: ${error instanceof Error ? error.message : String(error)}`;
        if (text !== this.#lastFailure)
          this.#options.logger.warn(
            { step: step.why, error: String(error) },
            "membership step failed; retrying",
          );
        this.#lastFailure = text;
      })
      .finally(() => {
        this.#busy = false;
      });
  }

  /** The next change to make, or null when the membership is as asked (exported for tests). */
  nextStep(status: RaftStatus): Step | null {
    return (
      this.#departureStep(status) ??
      this.#joinerStep(status) ??
      this.#roleStep(status) ??
      this.#preferenceStep(status)
    );
  }

  #departureStep(status: RaftStatus): Step | null {
    const departure = this.#options.metadata.departures()[0];
    if (departure === undefined) return null;
    const id = departure.raftId;
    if (!isMember(status, id)) {
      return this.#propose(`drop ${id} from the member list`, {
        kind: "cluster",
        op: "member-remove",
        raftId: id,
      });
    }
    if (id === this.#options.selfId) return this.#handOver(status, `${id} (the primary) leaves`);
    return this.#change(`remove ${id} from the Raft membership`, { kind: "remove", node: id });
  }

  #joinerStep(status: RaftStatus): Step | null {
    for (const member of this.#options.metadata.members()) {
      if (member.state !== "joining") continue;
      const id = member.raftId;
      if (!isMember(status, id))
        return this.#change(`add ${id} as a learner`, { kind: "add-learner", node: id });
      if (status.membership.voters.includes(id)) {
        return this.#propose(`mark ${id} active`, { kind: "cluster", op: "member-active", raftId: id });
      }
      if (!caughtUp(status, peerOf(status, id), catchUpLagEntries)) continue;
      if (member.role === "voter")
        return this.#change(`promote ${id} to voter`, { kind: "promote", node: id });
      return this.#propose(`mark standby ${id} active`, { kind: "cluster", op: "member-active", raftId: id });
    }
    return null;
  }

  #roleStep(status: RaftStatus): Step | null {
    for (const member of this.#options.metadata.members()) {
      if (member.state !== "active" || member.role !== "standby") continue;
      if (!status.membership.voters.includes(member.raftId)) continue;
      if (status.membership.voters.length <= 1) return null;
      if (member.raftId === this.#options.selfId)
        return this.#handOver(status, `${member.raftId} is a standby`);
      return this.#change(`demote standby ${member.raftId} to learner`, {
        kind: "demote",
        node: member.raftId,
      });
    }
    return null;
  }

  #preferenceStep(status: RaftStatus): Step | null {
    if (this.#options.nowMs() - this.#lastPreferenceTransferAtMs < preferenceTransferIntervalMs) return null;
    const members = this.#options.metadata.members();
    const self = members.find((member) => member.raftId === this.#options.selfId);
    if (self === undefined) return null;
    const best = this.#bestSuccessor(status);
    if (best === null) return null;
    const better = self.neverPrimary || (best.priority > self.priority && !best.neverPrimary);
    if (!better) return null;
    this.#lastPreferenceTransferAtMs = this.#options.nowMs();
    const why = self.neverPrimary
      ? "this node is never-primary"
      : `${best.raftId} has a higher primary priority`;
    return {
      why: `hand the primary role to ${best.raftId} (${why})`,
      run: () => this.#options.runtime.transferLeadership(best.raftId),
    };
  }

  /** The voter that should take over: eligible, caught up, highest priority (then list order). */
  #bestSuccessor(status: RaftStatus): { raftId: string; priority: number; neverPrimary: boolean } | null {
    const rows = new Map(this.#options.metadata.members().map((member) => [member.raftId, member]));
    let best: { raftId: string; priority: number; neverPrimary: boolean } | null = null;
    for (const id of status.membership.voters) {
      if (id === this.#options.selfId) continue;
      const row = rows.get(id);
      const peer = peerOf(status, id);
      if (row?.neverPrimary === true || row?.role === "standby" || peer?.recentActive !== true) continue;
      if (!caughtUp(status, peer, 0)) continue;
      const candidate = { raftId: id, priority: row?.priority ?? 0, neverPrimary: false };
      if (best === null || candidate.priority > best.priority) best = candidate;
    }
    return best;
  }

  #handOver(status: RaftStatus, why: string): Step | null {
    // A transfer takes up to an election timeout; asking again meanwhile would restart it.
    if (this.#options.nowMs() - this.#lastHandOverAtMs < handOverRetryMs) return null;
    const successor = this.#bestSuccessor(status);
    if (successor === null) return null; // nobody can take over yet: wait
    this.#lastHandOverAtMs = this.#options.nowMs();
    return {
      why: `${why}: hand the primary role to ${successor.raftId}`,
      run: () => this.#options.runtime.transferLeadership(successor.raftId),
    };
  }

  #change(why: string, change: MembershipChange): Step {
    return { why, run: () => this.#options.runtime.proposeMembership(change, { timeoutMs: 10_000 }) };
  }

  #propose(why: string, command: ClusterCommand): Step {
    return {
      why,
      run: async () => {
        const { result } = await this.#options.runtime.propose(this.#options.encode(command), {
          timeoutMs: 10_000,
        });
        const outcome = result as { ok: boolean; error?: { message: string } };
        if (!outcome.ok) throw new Error(outcome.error?.message ?? "refused by the state machine");
      },
    };
  }
}

function isMember(status: RaftStatus, id: string): boolean {
  return status.membership.voters.includes(id) || status.membership.learners.includes(id);
}

function peerOf(status: RaftStatus, id: string): PeerStatus | undefined {
  return status.peers.find((peer) => peer.id === id);
}

function caughtUp(status: RaftStatus, peer: PeerStatus | undefined, lagEntries: number): boolean {
  return peer !== undefined && peer.match >= status.lastIndex - lagEntries;
}

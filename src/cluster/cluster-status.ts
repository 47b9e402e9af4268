/**
 * What `conclave status` shows, from any member: every member in the configured order (static
 * list first, then joiners in join order) with its role, state, log position, lag, last contact
 * and clock offset from this node; and the cluster's facts (primary, term, quorum, failures it
 * survives, a warning for an even number of voters).
 *
 * States: PRIMARY, SECONDARY, STANDBY (not a member: waiting to be joined or removed), JOINING
 * (asked to join, not in the Raft membership yet), CATCHING_UP (a learner receiving the snapshot
 * and log), RECOVERY (running but refusing writes: its disk is full), LEAVING (a departure is
 * pending), DOWN (not heard from for 3 s), CANDIDATE (an election is running). This node's own
 * state is computed here; another member's is what it said of itself in its last ping. So is a
 * member's problem (a full disk, snapshots that fail), shown on its row and as a warning.
 */
import type { CatalogMember, ClusterMetadata } from "../ports/cluster-metadata.ts";
import type { Membership, RaftStatus } from "../raft/index.ts";
import { clockOffsetWarnMs, type MemberPings } from "./member-pings.ts";

/** One member's row. */
export interface MemberStatusRow {
  readonly name: string;
  readonly raftId: string;
  readonly self: boolean;
  /** voter, or standby (a learner: replicates, never votes). */
  readonly role: "voter" | "standby";
  readonly votes: boolean;
  readonly state: string;
  readonly applied: number | null;
  /** Entries behind the primary's commit index (as this node knows both); null when unknown. */
  readonly lag: number | null;
  /** Milliseconds since this node last heard from the member (0 for itself); null: never. */
  readonly lastContactAgoMs: number | null;
  /** The member's clock minus this node's (ms); null when unknown. */
  readonly clockOffsetMs: number | null;
  readonly clockWarning: boolean;
  /** What the member says keeps it from working normally (its disk is full, its snapshots fail), or null. */
  readonly problem: string | null;
  readonly httpUrl: string | null;
  readonly segment: number | null;
  readonly priority: number | null;
  readonly neverPrimary: boolean;
}

/** The whole answer of `GET /v1/cluster/status`. */
export interface ClusterStatusView {
  readonly node: string;
  readonly primary: string | null;
  readonly term: number;
  readonly voters: number;
  readonly quorum: number;
  readonly failuresTolerated: number;
  readonly warnings: readonly string[];
  /** The operator's message for when the cluster is in trouble (`conclave settings`), or null. */
  readonly recoveryMessage: string | null;
  readonly members: readonly MemberStatusRow[];
}

/** What the status needs to know about this node. */
export interface StatusSources {
  readonly selfId: string;
  readonly raft: RaftStatus;
  readonly running: boolean;
  readonly diskFullReason: string | null;
  /** Why this node's own snapshots fail for now, or null (RaftRuntime.snapshotFailureReason). */
  readonly snapshotFailureReason: string | null;
  /** Why its log takes no new entries (snapshots failed too long), or null (RaftRuntime.logFullReason). */
  readonly logFullReason: string | null;
  readonly metadata: ClusterMetadata;
  readonly pings: MemberPings;
  /** The configured static list: name and order of members that have not announced themselves. */
  readonly staticMembers: readonly { readonly raftId: string; readonly nodeName: string }[];
  /** The monotonic clock the pings' contact times are on (performance.now()). */
  readonly nowMs: number;
}

/** What keeps this node from working normally, in plain words, or null: told to every member in pings. */
export function selfProblem(runtime: {
  readonly diskFullReason: string | null;
  readonly snapshotFailureReason: string | null;
  readonly logFullReason: string | null;
}): string | null {
  if (runtime.diskFullReason !== null) return `refuses writes: ${runtime.diskFullReason}`;
  if (runtime.logFullReason !== null) return `takes no new writes: ${runtime.logFullReason}`;
  if (runtime.snapshotFailureReason !== null)
    return `takes no snapshots, so its log is not compacted: ${runtime.snapshotFailureReason}`;
  return null;
}

/** This node's own state (see the module comment). */
export function selfState(
  sources: Pick<StatusSources, "selfId" | "raft" | "running" | "diskFullReason" | "metadata">,
): string {
  const { raft, selfId, metadata } = sources;
  if (!sources.running) return "DOWN";
  if (metadata.departures().some((departure) => departure.raftId === selfId)) return "LEAVING";
  if (sources.diskFullReason !== null) return "RECOVERY";
  const row = metadata.members().find((member) => member.raftId === selfId);
  if (!inMembership(raft.membership, selfId)) return row?.state === "joining" ? "JOINING" : "STANDBY";
  if (row?.state === "joining") return "CATCHING_UP";
  if (raft.role === "leader") return "PRIMARY";
  return raft.role === "follower" ? "SECONDARY" : "CANDIDATE";
}

function inMembership(membership: Membership, id: string): boolean {
  return membership.voters.includes(id) || membership.learners.includes(id);
}

/** Builds the status view. */
export function clusterStatus(sources: StatusSources): ClusterStatusView {
  const { raft, metadata, selfId } = sources;
  const rows = new Map(metadata.members().map((member) => [member.raftId, member]));
  const ids = orderedIds(sources, rows);
  const primaryCommit = primaryCommitIndex(sources);
  const members = ids.map((id) => memberRow(sources, id, rows.get(id), primaryCommit));
  const voters = raft.membership.voters.length;
  const quorum = Math.floor(voters / 2) + 1;
  const warnings: string[] = [];
  if (voters > 0 && voters % 2 === 0) {
    warnings.push(
      `${voters} voters: an even count survives no more failures than ${voters - 1}; add or remove a voter`,
    );
  }
  for (const row of members) {
    if (row.problem !== null) warnings.push(`${row.name} ${row.problem}`);
    if (row.clockWarning)
      warnings.push(
        `${row.name}'s clock is ${Math.round(row.clockOffsetMs ?? 0)} ms off this node's; keep members' clocks in sync (NTP)`,
      );
  }
  const primaryRow = members.find((row) => row.raftId === raft.leader);
  return {
    node: members.find((row) => row.raftId === selfId)?.name ?? selfId,
    primary: raft.leader === null ? null : (primaryRow?.name ?? raft.leader),
    term: raft.term,
    voters,
    quorum: voters === 0 ? 0 : quorum,
    failuresTolerated: voters === 0 ? 0 : voters - quorum,
    warnings,
    recoveryMessage: metadata.settings().recoveryMessage,
    members,
  };
}

function orderedIds(sources: StatusSources, rows: Map<string, CatalogMember>): string[] {
  const order = new Map<string, number>();
  for (const [position, member] of sources.staticMembers.entries()) order.set(member.raftId, position);
  for (const row of rows.values()) order.set(row.raftId, row.position);
  const ids = new Set([
    ...rows.keys(),
    ...sources.raft.membership.voters,
    ...sources.raft.membership.learners,
    sources.selfId,
  ]);
  const removed = new Set(sources.metadata.removed().map((node) => node.raftId));
  for (const member of sources.staticMembers)
    if (!removed.has(member.raftId) && inMembership(sources.raft.membership, member.raftId))
      ids.add(member.raftId);
  return [...ids].sort((a, b) => (order.get(a) ?? 5000) - (order.get(b) ?? 5000) || a.localeCompare(b));
}

function primaryCommitIndex(sources: StatusSources): number {
  const { raft, pings, selfId } = sources;
  if (raft.leader === null || raft.leader === selfId) return raft.commit;
  return Math.max(raft.commit, pings.contact(raft.leader)?.reported.commit ?? 0);
}

function memberRow(
  sources: StatusSources,
  id: string,
  row: CatalogMember | undefined,
  primaryCommit: number,
): MemberStatusRow {
  const { raft, pings, selfId, nowMs } = sources;
  const self = id === selfId;
  const contact = self ? null : pings.contact(id);
  const name = row?.nodeName ?? sources.staticMembers.find((member) => member.raftId === id)?.nodeName ?? id;
  const applied = self ? raft.applied : (contact?.reported.applied ?? null);
  let state: string;
  if (self) state = selfState(sources);
  else if (sources.metadata.departures().some((departure) => departure.raftId === id)) state = "LEAVING";
  else if (!pings.reachable(id))
    state = row?.state === "joining" && !inMembership(raft.membership, id) ? "JOINING" : "DOWN";
  else state = contact?.reported.state ?? "DOWN";
  const offset = contact?.offsetMs ?? null;
  return {
    name,
    raftId: id,
    self,
    role: row?.role ?? (raft.membership.learners.includes(id) ? "standby" : "voter"),
    votes: raft.membership.voters.includes(id),
    state,
    applied,
    lag: applied === null ? null : Math.max(0, primaryCommit - applied),
    lastContactAgoMs: self ? 0 : contact === null ? null : Math.max(0, nowMs - contact.lastContactAtMs),
    clockOffsetMs: offset === null ? null : Math.round(offset * 10) / 10,
    clockWarning: offset !== null && Math.abs(offset) > clockOffsetWarnMs,
    problem: self ? selfProblem(sources) : (contact?.reported.problem ?? null),
    httpUrl: row?.httpUrl ?? null,
    segment: row?.segment ?? null,
    priority: row?.priority ?? null,
    neverPrimary: row?.neverPrimary ?? false,
  };
}

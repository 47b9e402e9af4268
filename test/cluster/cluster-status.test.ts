/**
 * What `conclave status` says of members' problems (src/cluster/cluster-status.ts): this node's
 * own (a full disk, snapshots that fail) and what the others said of themselves in their last
 * ping, on their rows and as plain-language warnings.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import type { ClusterMessage } from "../../src/cluster/cluster-channel.ts";
import { clusterStatus, type StatusSources } from "../../src/cluster/cluster-status.ts";
import { MemberPings } from "../../src/cluster/member-pings.ts";
import type { ClusterMetadata } from "../../src/ports/cluster-metadata.ts";
import type { RaftStatus } from "../../src/raft/index.ts";

const metadata = {
  members: () => [],
  departures: () => [],
  removed: () => [],
  settings: () => ({ recoveryMessage: null }),
  listen: () => () => {},
} as unknown as ClusterMetadata;

const raft = {
  id: "n1",
  role: "leader",
  leader: "n1",
  term: 3,
  commit: 10,
  applied: 10,
  membership: { voters: ["n1", "n2", "n3"], learners: [] },
} as unknown as RaftStatus;

/** Pings of n1, with a ping from each of n2 and n3 carrying what they report of themselves. */
function pingsWith(reports: Record<string, string | null>): MemberPings {
  const pings = new MemberPings({
    send: () => true,
    wallClockMs: () => 1_000_000,
    monotonicMs: () => 5_000,
    self: () => ({ state: "PRIMARY", applied: 10, commit: 10, problem: null }),
    targets: () => ["n2", "n3"],
  });
  for (const [id, problem] of Object.entries(reports)) {
    const ping = { type: "ping", sentAtMs: 1_000_000, state: "SECONDARY", applied: 10, commit: 10, problem };
    pings.receive(id, ping as ClusterMessage);
  }
  return pings;
}

function sources(overrides: Partial<StatusSources>): StatusSources {
  return {
    selfId: "n1",
    raft,
    running: true,
    diskFullReason: null,
    snapshotFailureReason: null,
    logFullReason: null,
    metadata,
    pings: pingsWith({ n2: null, n3: null }),
    staticMembers: ["n1", "n2", "n3"].map((id) => ({ raftId: id, nodeName: `${id}@10.0.0.1` })),
    nowMs: 5_000,
    ...overrides,
  };
}

it("shows each member's problem on its row and as a warning, this node's own included", () => {
  const view = clusterStatus(
    sources({
      snapshotFailureReason: "copying the database for a snapshot found the disk full",
      pings: pingsWith({ n2: "refuses writes: the disk holding /data is full", n3: null }),
    }),
  );
  const problems = Object.fromEntries(view.members.map((row) => [row.raftId, row.problem]));
  assert.deepEqual(problems, {
    n1: "takes no snapshots, so its log is not compacted: copying the database for a snapshot found the disk full",
    n2: "refuses writes: the disk holding /data is full",
    n3: null,
  });
  assert.deepEqual(view.warnings, [
    "n1@10.0.0.1 takes no snapshots, so its log is not compacted: copying the database for a snapshot found the disk full",
    "n2@10.0.0.1 refuses writes: the disk holding /data is full",
  ]);
});

it("a full disk of this node's own is its problem first; no problems, no warnings", () => {
  const full = clusterStatus(sources({ diskFullReason: "the disk is full", snapshotFailureReason: "also" }));
  assert.equal(full.members[0]?.problem, "refuses writes: the disk is full");
  assert.equal(full.members[0]?.state, "RECOVERY");
  assert.deepEqual(clusterStatus(sources({})).warnings, []);
});

it("a log that snapshots could not compact for too long is told before the snapshot failure itself", () => {
  const view = clusterStatus(
    sources({ snapshotFailureReason: "no room", logFullReason: "its log holds 128 MiB (…): no room" }),
  );
  assert.equal(view.members[0]?.problem, "takes no new writes: its log holds 128 MiB (…): no room");
  assert.equal(view.members[0]?.state, "PRIMARY", "not RECOVERY: it still leads and serves reads");
});

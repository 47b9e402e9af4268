/**
 * Scenarios: durable notices. Once its own write is durable, the leader of at most three voters
 * tells its followers how far its log is on disk; a follower that holds those entries (of the
 * current term) commits them without waiting for the leader's commit index, and a linearizable
 * read at the leader waits for what a notice announced.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { RaftMutation } from "../../src/raft/api-types.ts";
import { Cluster } from "./harness.ts";
import { lines } from "./transcript.ts";

/** a leads b and c; x=1 is proposed, every acknowledgement to a is held back. */
function committedByFollowersOnly(mutations: RaftMutation[] = []): { cluster: Cluster; release: () => void } {
  const cluster = new Cluster({
    voters: ["a", "b", "c"],
    raft: { mutations },
    trace: ["append", "append-response", "durable"],
  });
  cluster.elect("a");
  cluster.tickAll(1);
  cluster.takeTranscript();
  const release = cluster.drop((message) => message.type === "append-response" && message.to === "a");
  assert.deepEqual(cluster.propose("a", "x", "1"), { ok: true, index: 3, term: 2 });
  cluster.deliverAll();
  return { cluster, release };
}

test("a follower commits and applies on the leader's durable notice, before the leader hears its acknowledgement", () => {
  const { cluster } = committedByFollowersOnly();
  assert.equal(
    cluster.takeTranscript(),
    lines(`
      t=1 a→b append term=2 prev=2/2 n=1 commit=2
      t=1 a→c append term=2 prev=2/2 n=1 commit=2
      t=1 a→b durable term=2 index=3
      t=1 a→c durable term=2 index=3
      t=1 b→a append-ok term=2 match=3 DROPPED
      t=1 c→a append-ok term=2 match=3 DROPPED
    `),
  );
  assert.equal(cluster.node("a").status().commit, 2, "the leader has heard no acknowledgement");
  for (const id of ["b", "c"]) {
    assert.equal(cluster.node(id).status().commit, 3);
    assert.deepEqual(cluster.applied(id), { x: "1" });
  }
});

test("a read at the leader waits for what its notices announced, so it sees a write a follower answered", () => {
  const { cluster, release } = committedByFollowersOnly();
  const read = cluster.read("a", "x");
  cluster.tickAll(2); // heartbeat rounds confirm leadership; the commit still waits
  assert.deepEqual(cluster.readOutcome("a", read.requestId), { status: "pending" });
  release();
  cluster.tickAll(2); // the acknowledgements are resent after a heartbeat
  assert.deepEqual(cluster.readOutcome("a", read.requestId), { status: "served", index: 3, value: "1" });
});

test("without that rule (a mutation) the same read misses the write the followers committed", () => {
  const { cluster } = committedByFollowersOnly(["read-ignores-durable-notices"]);
  assert.deepEqual(cluster.applied("b"), { x: "1" });
  const read = cluster.read("a", "x");
  cluster.tickAll(2);
  const outcome = cluster.readOutcome("a", read.requestId);
  assert.equal(outcome.status, "served");
  assert.equal(outcome.status === "served" ? outcome.value : "", undefined, "a stale read");
});

test("with five voters the leader and one follower are no quorum: no notices, followers wait for the leader", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c", "d", "e"], trace: ["durable"] });
  cluster.elect("a");
  cluster.tickAll(1);
  cluster.drop((message) => message.type === "append-response" && message.to === "a");
  cluster.propose("a", "x", "1");
  cluster.deliverAll();
  assert.equal(cluster.takeTranscript().includes("durable"), false);
  for (const id of ["b", "c", "d", "e"]) assert.deepEqual(cluster.applied(id), {});
});

test("a notice commits no entry of an earlier term (§5.4.2), only once the new leader's own entry is there", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  cluster.tickAll(1);
  // x=1 reaches b and c but a hears no acknowledgement, and sends no notice: it is not committed.
  const holdAcks = cluster.drop((message) => message.type === "append-response" && message.to === "a");
  const holdNotices = cluster.drop((message) => message.type === "durable");
  cluster.propose("a", "x", "1");
  cluster.deliverAll();
  holdAcks();
  holdNotices();
  assert.equal(cluster.node("c").status().commit, 2);
  cluster.crash("a");
  // b or c wins term 3; its no-op (index 4) reaches nobody yet.
  cluster.drop((message) => message.type === "append");
  cluster.tickUntil(() => cluster.leader() !== null, 40);
  const leader = cluster.leader() as string;
  const follower = leader === "b" ? "c" : "b";
  const raft = cluster.node(follower);
  assert.equal(raft.status().lastIndex, 3);
  const notice = (index: number) =>
    cluster.on(follower, (core) =>
      core.step({ type: "durable", from: leader, to: follower, term: 3, index }),
    );
  notice(4);
  assert.equal(raft.status().commit, 2, "entry 3 is of term 2: a notice in term 3 cannot commit it");
  // Once the leader's no-op (term 3) is in the follower's log, a notice commits it and all before it.
  cluster.on(follower, (core) =>
    core.step({
      type: "append",
      from: leader,
      to: follower,
      term: 3,
      prevIndex: 3,
      prevTerm: 2,
      entries: [{ kind: "noop", index: 4, term: 3 }],
      commit: 2,
      commitOnly: false,
    }),
  );
  assert.equal(raft.status().commit, 2);
  notice(4);
  assert.equal(raft.status().commit, 4);
  assert.deepEqual(cluster.applied(follower), { x: "1" });
});

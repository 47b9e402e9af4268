/**
 * Scenarios: removing the leader, a learner promoted to voter, one membership change at a time.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Cluster } from "./harness.ts";
import { lines } from "./transcript.ts";

test("removing the leader: it leads until the removal commits, hands over, and never disrupts later", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"], trace: ["timeout-now"] });
  cluster.elect("a");
  cluster.propose("a", "x", "1");
  cluster.deliverAll();
  cluster.takeTranscript();
  // Hold the acknowledgements so that the removal is appended but not yet committed.
  const holdAcks = cluster.drop((message) => message.type === "append-response");
  const removal = cluster.on("a", (raft) => raft.proposeMembership({ kind: "remove", node: "a" }));
  assert.deepEqual(removal, { ok: true, index: 4, term: 2 });
  cluster.deliverAll();
  assert.deepEqual(cluster.node("a").status().membership, { voters: ["b", "c"], learners: [] });
  assert.equal(cluster.node("a").status().role, "leader", "still leading while the removal is uncommitted");
  assert.equal(cluster.propose("a", "y", "1").ok, true, "and still accepting writes");
  holdAcks();
  cluster.tickAll(1);
  assert.equal(
    cluster.takeTranscript(),
    lines(`
      t=1 a: follower term=2
      t=1 a→b timeout-now term=2
      t=1 b: candidate term=3
      t=1 c: follower term=3
      t=1 b: leader term=3
      t=1 c: follower term=3 leader=b
    `),
  );
  cluster.tickAll(200); // a's election timer expires many times over
  assert.equal(cluster.leader(), "b");
  assert.equal(cluster.node("a").status().term, 2, "a never campaigned");
  assert.equal(cluster.propose("b", "z", "1").ok, true);
  cluster.deliverAll();
  assert.deepEqual(cluster.applied("c"), { x: "1", y: "1", z: "1" });
});

test("a learner catches up without ever campaigning, then once promoted counts in the quorum", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.addNode("d");
  cluster.elect("a");
  cluster.propose("a", "x", "1");
  cluster.deliverAll();
  cluster.takeTranscript();
  assert.equal(
    cluster.on("a", (raft) => raft.proposeMembership({ kind: "add-learner", node: "d" })).ok,
    true,
  );
  cluster.tickAll(2);
  assert.deepEqual(cluster.applied("d"), { x: "1" }, "the learner replicated the log");
  // Cut the learner from everyone for a long time: its election timer expires, it never campaigns.
  cluster.isolate("d");
  cluster.tickAll(100);
  assert.deepEqual(cluster.node("d").status().role, "follower");
  assert.equal(cluster.node("d").status().term, 2);
  cluster.heal();
  cluster.tickAll(2);
  assert.equal(cluster.on("a", (raft) => raft.proposeMembership({ kind: "promote", node: "d" })).ok, true);
  cluster.tickAll(2);
  assert.deepEqual(cluster.node("d").status().membership, { voters: ["a", "b", "c", "d"], learners: [] });
  // Four voters need three acknowledgements. With c cut off and d's answers held back, a and b
  // are two of four: the write waits; once d answers, it commits.
  cluster.isolate("c");
  const holdD = cluster.drop((message) => message.from === "d");
  const write = cluster.propose("a", "y", "1");
  assert.equal(write.ok, true);
  cluster.tickAll(3);
  assert.equal(cluster.node("a").status().commit, (write.ok ? write.index : 0) - 1, "a+b are no quorum of 4");
  holdD();
  cluster.tickAll(1);
  assert.equal(
    cluster.node("a").status().commit,
    write.ok ? write.index : 0,
    "d's acknowledgement completes it",
  );
  assert.deepEqual(cluster.applied("d"), { x: "1", y: "1" });
  assert.equal(
    cluster.takeTranscript(),
    lines(`
      t=1 d: follower term=2 leader=a
      t=2 partition d | a,b,c
      t=102 heal
      t=106 partition c | a,b,d
    `),
    "nobody changed role or term: d never campaigned, even cut off for 100 ticks",
  );
});

test("one membership change at a time, and none before the leader committed an entry of its term", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.addNode("d");
  cluster.addNode("e");
  const holdAcks = cluster.drop((message) => message.type === "append-response");
  cluster.elect("a");
  assert.deepEqual(
    cluster.on("a", (raft) => raft.proposeMembership({ kind: "add-learner", node: "d" })),
    {
      ok: false,
      reason: "leader-not-ready",
      leader: "a",
    },
  );
  holdAcks();
  cluster.tickAll(1);
  assert.equal(
    cluster.on("a", (raft) => raft.proposeMembership({ kind: "add-learner", node: "d" })).ok,
    true,
  );
  assert.deepEqual(
    cluster.on("a", (raft) => raft.proposeMembership({ kind: "add-learner", node: "e" })),
    {
      ok: false,
      reason: "membership-change-pending",
      leader: "a",
    },
  );
  cluster.deliverAll();
  assert.equal(
    cluster.on("a", (raft) => raft.proposeMembership({ kind: "add-learner", node: "e" })).ok,
    true,
  );
  assert.deepEqual(
    cluster.on("a", (raft) => raft.proposeMembership({ kind: "remove", node: "zz" })),
    {
      ok: false,
      reason: "membership-change-pending",
      leader: "a",
    },
  );
  cluster.deliverAll();
  const invalid = cluster.on("a", (raft) => raft.proposeMembership({ kind: "remove", node: "zz" }));
  assert.equal(invalid.ok === false && invalid.reason, "invalid");
});

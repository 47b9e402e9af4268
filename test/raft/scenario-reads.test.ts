/**
 * Scenarios: ReadIndex on a new leader, lease reads, and leases during a leadership transfer.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Cluster } from "./harness.ts";
import { lines } from "./transcript.ts";

test("a read issued before the new leader's no-op commits waits for it, then is served", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"], trace: ["append-response", "heartbeat-response"] });
  cluster.elect("a");
  cluster.propose("a", "x", "1");
  cluster.tickAll(2);
  // a is cut off; b and c elect a new leader, whose no-op is not acknowledged yet.
  cluster.isolate("a");
  const holdAcks = cluster.drop((message) => message.type === "append-response" && message.to !== "a");
  cluster.tickUntil(() => ![null, "a"].includes(cluster.leader()), 30);
  const leader = cluster.leader() as string;
  cluster.takeTranscript();
  const read = cluster.read(leader, "x");
  cluster.deliverAll();
  assert.deepEqual(cluster.readOutcome(leader, read.requestId), { status: "pending" }, "no-op not committed");
  holdAcks();
  cluster.tickAll(1);
  assert.equal(
    cluster.takeTranscript(),
    lines(`
      t=18 b→c heartbeat-ok term=3 last=4
      t=18 b→c append-ok term=3 match=4
      t=18 b→c heartbeat-ok term=3 last=4
      t=18 c read#1 served index=4
    `),
  );
  assert.deepEqual(cluster.readOutcome(leader, read.requestId), { status: "served", index: 4, value: "1" });
});

test("lease reads are served without a heartbeat round while the lease holds, and wait once it lapses", () => {
  const cluster = new Cluster({
    voters: ["a", "b", "c"],
    raft: { leaseDriftTicks: 2, heartbeatTicks: 3 },
    trace: ["heartbeat"],
  });
  cluster.elect("a");
  cluster.propose("a", "x", "1");
  cluster.tickAll(3); // one heartbeat round, acknowledged by b and c: the lease starts
  cluster.takeTranscript();
  const leased = cluster.read("a", "x");
  assert.equal(cluster.pending().length, 0, "no heartbeat was sent for the read");
  assert.deepEqual(cluster.readOutcome("a", leased.requestId), { status: "served", index: 3, value: "1" });
  // Without acknowledgements the lease (electionTimeout − drift = 8 ticks after the round) lapses.
  cluster.partition(["a"], ["b", "c"]);
  cluster.tickAll(7);
  const stillLeased = cluster.read("a", "x");
  assert.equal(cluster.readOutcome("a", stillLeased.requestId).status, "served");
  cluster.tickAll(1);
  const late = cluster.read("a", "x");
  cluster.deliverAll();
  assert.deepEqual(cluster.readOutcome("a", late.requestId), { status: "pending" });
  assert.equal(
    cluster.takeTranscript(),
    lines(`
      t=3 a read#1 served index=3
      t=3 partition a | b,c
      t=6 a→b heartbeat term=2 commit=3 DROPPED
      t=6 a→c heartbeat term=2 commit=3 DROPPED
      t=9 a→b heartbeat term=2 commit=3 DROPPED
      t=9 a→c heartbeat term=2 commit=3 DROPPED
      t=10 a read#2 served index=3
      t=11 a→b heartbeat term=2 commit=3 DROPPED
      t=11 a→c heartbeat term=2 commit=3 DROPPED
    `),
  );
});

test("without a lease every read costs a heartbeat round", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"], raft: { heartbeatTicks: 3 } });
  cluster.elect("a");
  cluster.tickAll(3);
  const read = cluster.read("a", "x");
  assert.deepEqual(cluster.readOutcome("a", read.requestId), { status: "pending" });
  assert.deepEqual(
    cluster.pending().map((message) => `${message.type}→${message.to}`),
    ["heartbeat→b", "heartbeat→c"],
  );
  cluster.deliverAll();
  assert.equal(cluster.readOutcome("a", read.requestId).status, "served");
});

test("a leader that handed over leadership serves no lease read (regression: stale read)", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"], raft: { leaseDriftTicks: 2 } });
  cluster.elect("a");
  cluster.propose("a", "x", "1");
  cluster.tickAll(1);
  // a's lease holds. It hands over to b, then loses touch with everyone but its timeout-now.
  cluster.drop((message) => message.to === "a" || (message.from === "a" && message.type !== "timeout-now"));
  assert.deepEqual(
    cluster.on("a", (raft) => raft.transferLeadership("b")),
    { ok: true },
  );
  cluster.deliverAll();
  assert.equal(cluster.leader(), "b");
  cluster.propose("b", "x", "2");
  cluster.deliverAll();
  assert.deepEqual(cluster.applied("b"), { x: "2" });
  assert.equal(cluster.node("a").status().role, "leader", "a has not heard of term 3 yet");
  const read = cluster.read("a", "x");
  assert.notEqual(cluster.readOutcome("a", read.requestId).status, "served", "x=1 would be a stale read");
});

test("a restarted voter does not help elect a new leader while the old leader's lease may hold", () => {
  // a leads with leases; c is cut off from a but still reaches b. b acknowledges a's heartbeat
  // (a's lease starts), restarts and forgets a, then a is cut off from b too. Without the restart
  // rule b would vote for c at once, and c could commit while a still serves lease reads.
  const cluster = new Cluster({ voters: ["a", "b", "c"], raft: { leaseDriftTicks: 2 } });
  cluster.elect("a");
  cluster.propose("a", "x", "1");
  cluster.tickAll(2); // x=1 reaches everyone, so c's log is as good as b's
  cluster.drop((m) => (m.from === "a" && m.to === "c") || (m.from === "c" && m.to === "a"));
  // c's timer runs out; its pre-votes fail because b still hears a (leader stickiness).
  cluster.tickAll(25);
  assert.equal(cluster.leader(), "a");
  const leased = cluster.read("a", "x");
  assert.equal(cluster.readOutcome("a", leased.requestId).status, "served", "a holds a lease");
  cluster.crash("b");
  cluster.restart("b");
  cluster.drop((m) => m.from === "a" || m.to === "a");
  for (let tick = 0; tick < 30; tick++) {
    cluster.tickAll(1);
    const read = cluster.read("a", "x");
    const servedByA = read.result.ok && cluster.readOutcome("a", read.requestId).status === "served";
    const otherLeader = ["b", "c"].some((id) => cluster.node(id).status().role === "leader");
    assert.ok(!(servedByA && otherLeader), `tick ${tick}: a served a lease read while another node led`);
  }
  cluster.tickUntil(() => ["b", "c"].includes(cluster.leader() ?? ""), 100);
  assert.ok(["b", "c"].includes(cluster.leader() ?? ""), "b or c leads once a's lease is over");
});

test("reads arriving while a round is in flight share the next round, sent once that one is confirmed", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"], raft: { heartbeatTicks: 3 } });
  cluster.elect("a");
  cluster.tickAll(3);
  cluster.deliverAll();
  const first = cluster.read("a", "x");
  const heartbeats = () => cluster.pending().filter((message) => message.type === "heartbeat").length;
  assert.equal(heartbeats(), 2, "the first read starts a round");
  const second = cluster.read("a", "x");
  const third = cluster.read("a", "x");
  assert.equal(heartbeats(), 2, "no second round while the first is unconfirmed");
  cluster.deliverAll();
  for (const read of [first, second, third])
    assert.equal(cluster.readOutcome("a", read.requestId).status, "served");
});

test("reads behind a round whose messages were lost get a new round at the next tick", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"], raft: { heartbeatTicks: 3 } });
  cluster.elect("a");
  cluster.tickAll(3);
  cluster.deliverAll();
  cluster.drop((message) => message.type === "heartbeat", 2);
  const lost = cluster.read("a", "x");
  const waiting = cluster.read("a", "x");
  cluster.deliverAll();
  assert.equal(cluster.readOutcome("a", waiting.requestId).status, "pending");
  cluster.tickAll(1); // not a heartbeat tick: the waiting read starts its own round
  cluster.deliverAll();
  assert.equal(cluster.readOutcome("a", waiting.requestId).status, "served");
  assert.equal(cluster.readOutcome("a", lost.requestId).status, "served", "a later round confirms it too");
});

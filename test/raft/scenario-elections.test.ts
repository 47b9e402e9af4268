/**
 * Scenarios: pre-vote, check-quorum, and a partitioned old leader that must not serve a stale read.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Cluster } from "./harness.ts";
import { lines } from "./transcript.ts";

/** Isolates follower c for five election timeouts while a keeps leading and writing, then heals. */
function isolateFollowerThenHeal(preVote: boolean): Cluster {
  const trace = preVote ? (["vote", "vote-response"] as const) : [];
  const cluster = new Cluster({ voters: ["a", "b", "c"], raft: { preVote }, trace });
  cluster.elect("a");
  cluster.propose("a", "x", "1");
  cluster.deliverAll();
  cluster.takeTranscript();
  cluster.isolate("c");
  cluster.tickAll(20);
  assert.equal(cluster.propose("a", "x", "2").ok, true);
  cluster.tickAll(30);
  cluster.heal();
  cluster.tickAll(30);
  return cluster;
}

test("pre-vote: an isolated follower keeps pre-voting without raising its term; on heal the leader stays", () => {
  const cluster = isolateFollowerThenHeal(true);
  assert.equal(
    cluster.takeTranscript(),
    lines(`
      t=0 partition c | a,b
      t=15 c: pre-candidate term=2
      t=15 c→a pre-vote term=3 last=3/2 DROPPED
      t=15 c→b pre-vote term=3 last=3/2 DROPPED
      t=28 c→a pre-vote term=3 last=3/2 DROPPED
      t=28 c→b pre-vote term=3 last=3/2 DROPPED
      t=39 c→a pre-vote term=3 last=3/2 DROPPED
      t=39 c→b pre-vote term=3 last=3/2 DROPPED
      t=50 heal
      t=51 c: follower term=2 leader=a
    `),
  );
  assert.equal(cluster.leader(), "a");
  for (const id of ["a", "b", "c"]) assert.equal(cluster.node(id).status().term, 2);
  assert.deepEqual(cluster.applied("c"), { x: "2" }, "c caught up with the write it missed");
});

test("without pre-vote the same isolation raises c's term and deposes the leader on heal", () => {
  const cluster = isolateFollowerThenHeal(false);
  assert.equal(
    cluster.takeTranscript(),
    lines(`
      t=0 partition c | a,b
      t=15 c: candidate term=3
      t=28 c: candidate term=4
      t=39 c: candidate term=5
      t=50 heal
      t=51 a: follower term=5
      t=56 c: candidate term=6
      t=56 a: follower term=6
      t=68 b: candidate term=3
      t=74 c: candidate term=7
      t=74 a: follower term=7
      t=74 b: follower term=7
      t=74 c: follower term=7
    `),
  );
  // c's stale-term answers to a's heartbeats depose a at heal; c cannot win (its log misses x=2),
  // so the cluster has no leader until a or b wins a later term.
  const rounds = cluster.tickUntil(() => cluster.leader() !== null, 60);
  assert.ok(rounds > 1, "the cluster was leaderless for a while");
  assert.ok(["a", "b"].includes(cluster.leader() as string));
  assert.ok(cluster.node("a").status().term >= 8);
});

test("check-quorum: a leader cut from the majority steps down; the majority elects; the old one learns the term", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  cluster.tickAll(3);
  cluster.takeTranscript();
  cluster.isolate("a");
  const rounds = cluster.tickUntil(() => cluster.node("a").status().role !== "leader", 40);
  assert.ok(rounds <= 2 * 10, `stepped down after ${rounds} ticks, within two election timeouts`);
  cluster.tickAll(5);
  cluster.heal();
  cluster.tickAll(3);
  assert.equal(
    cluster.takeTranscript(),
    lines(`
      t=3 partition a | b,c
      t=18 c: pre-candidate term=2
      t=18 c: candidate term=3
      t=18 b: follower term=3
      t=18 c: leader term=3
      t=18 b: follower term=3 leader=c
      t=20 a: follower term=2
      t=25 heal
      t=26 a: follower term=3 leader=c
    `),
  );
});

test("a partitioned old leader never serves a read; the new leader serves the new value", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  cluster.propose("a", "x", "old");
  cluster.tickAll(3);
  cluster.isolate("a");
  cluster.tickUntil(() => cluster.leader() !== "a" && cluster.leader() !== null, 40);
  const newLeader = cluster.leader() as string;
  cluster.propose(newLeader, "x", "new");
  cluster.deliverAll();
  assert.equal(cluster.node("a").status().role, "leader", "a still believes it leads");
  const stale = cluster.read("a", "x");
  assert.equal(stale.result.ok, true, "the old leader accepts the read request…");
  cluster.tickAll(1);
  assert.deepEqual(
    cluster.readOutcome("a", stale.requestId),
    { status: "pending" },
    "…but cannot confirm it",
  );
  cluster.tickUntil(() => cluster.node("a").status().role !== "leader", 20);
  assert.deepEqual(
    cluster.readOutcome("a", stale.requestId),
    { status: "failed" },
    "reported in readsFailed",
  );
  const fresh = cluster.read(newLeader, "x");
  cluster.deliverAll();
  assert.deepEqual(cluster.readOutcome(newLeader, fresh.requestId), {
    status: "served",
    index: 5,
    value: "new",
  });
});

test("ticksUntilElectionTimeout: none for a leader; a follower's counts down with ticks and resets on heartbeats", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"], learners: ["d"] });
  cluster.elect("a");
  assert.equal(cluster.node("a").ticksUntilElectionTimeout(), null, "a leader needs every tick");
  const b = cluster.node("b");
  const full = b.ticksUntilElectionTimeout() as number;
  assert.ok(full >= 10 && full < 20, `${full}: within [electionTimeout, 2 × electionTimeout)`);
  cluster.partition(["a"], ["b", "c", "d"]);
  cluster.tickAll(3);
  assert.equal(b.ticksUntilElectionTimeout(), full - 3, "no heartbeat: three ticks closer");
  cluster.heal();
  cluster.tickAll(1);
  assert.equal(b.ticksUntilElectionTimeout(), full, "a heartbeat pushed it back");
  assert.equal(cluster.node("d").ticksUntilElectionTimeout(), 10, "a learner never campaigns: one timeout");
});

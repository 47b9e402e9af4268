/**
 * Scenarios: lost appends and lost acknowledgements in replicate state are recovered by the
 * heartbeat, without waiting for another proposal (regressions: both stalled the commit forever).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Cluster } from "./harness.ts";
import { encodeCommand } from "./kv-store.ts";
import { lines } from "./transcript.ts";

test("appends lost in replicate state are resent after a heartbeat, with no new proposal", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"], trace: ["append", "append-response"] });
  cluster.elect("a");
  cluster.takeTranscript();
  cluster.drop((message) => message.type === "append", 2);
  assert.deepEqual(cluster.propose("a", "x", "1"), { ok: true, index: 3, term: 2 });
  cluster.deliverAll();
  cluster.tickAll(1);
  assert.equal(
    cluster.takeTranscript(),
    lines(`
      t=0 a→b append term=2 prev=2/2 n=1 commit=2 DROPPED
      t=0 a→c append term=2 prev=2/2 n=1 commit=2 DROPPED
      t=1 a→b append term=2 prev=3/2 n=0 commit=2
      t=1 a→c append term=2 prev=3/2 n=0 commit=2
      t=1 b→a append-reject term=2 prev=3 hint=3/0 last=2
      t=1 c→a append-reject term=2 prev=3 hint=3/0 last=2
      t=1 a→b append term=2 prev=2/2 n=1 commit=2
      t=1 a→c append term=2 prev=2/2 n=1 commit=2
      t=1 b→a append-ok term=2 match=3
      t=1 c→a append-ok term=2 match=3
      t=1 a→b append term=2 prev=3/2 n=0 commit=3 commit-only
      t=1 a→c append term=2 prev=3/2 n=0 commit=3 commit-only
    `),
  );
  for (const id of ["a", "b", "c"]) assert.deepEqual(cluster.applied(id), { x: "1" });
});

test("acknowledgements lost in replicate state are recovered after a heartbeat", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  cluster.drop((message) => message.type === "append-response", 2);
  cluster.propose("a", "x", "1");
  cluster.deliverAll();
  assert.equal(cluster.node("a").status().commit, 2, "no acknowledgement: not committed yet");
  cluster.tickAll(1);
  assert.equal(cluster.node("a").status().commit, 3);
  for (const id of ["a", "b", "c"]) assert.deepEqual(cluster.applied(id), { x: "1" });
});

test("lost appends are resent even when they filled the in-flight window", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"], raft: { inflightMax: 1 } });
  cluster.elect("a");
  cluster.drop((message) => message.type === "append", 2);
  cluster.propose("a", "x", "1");
  cluster.deliverAll();
  cluster.tickAll(1);
  assert.equal(cluster.node("a").status().commit, 3);
  for (const id of ["a", "b", "c"]) assert.deepEqual(cluster.applied(id), { x: "1" });
});

test("a follower partitioned while the leader wrote catches up after heal on an idle cluster", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  cluster.isolate("c");
  cluster.propose("a", "x", "1");
  cluster.tickAll(3);
  cluster.heal();
  cluster.tickAll(2);
  assert.deepEqual(cluster.applied("c"), { x: "1" });
  assert.equal(cluster.node("c").status().commit, 3);
});

test("a leader deposed before its Ready is handled has nothing left to do afterwards", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  // In one batch (as a runtime steps several inputs between two Readies): a proposal leaves a
  // broadcast pending, then a heartbeat of a newer leader deposes a.
  cluster.on("a", (raft) => {
    raft.propose(encodeCommand("x", "1"));
    raft.step({ type: "heartbeat", from: "b", to: "a", term: 3, commit: 2, round: 1 });
  });
  assert.deepEqual(
    { role: cluster.node("a").status().role, leader: cluster.node("a").status().leader },
    { role: "follower", leader: "b" },
  );
  assert.equal(cluster.node("a").hasReady(), false, "a runtime loop would spin on hasReady()");
});

test("a follower that does not answer holds at most inflightBytesMax of appends, then gets the rest", () => {
  const value = "v".repeat(400);
  const cluster = new Cluster({
    voters: ["a", "b", "c"],
    raft: { inflightBytesMax: 1000, appendEntriesMax: 1 },
  });
  cluster.elect("a");
  cluster.deliverAll();
  for (let i = 0; i < 10; i++) cluster.propose("a", `k${i}`, value);
  const appendsTo = (id: string) =>
    cluster.pending().filter((m) => m.type === "append" && m.to === id && m.entries.length > 0).length;
  // Each append carries one ~400-byte entry: the third one passes 1000 bytes, so no fourth.
  assert.equal(appendsTo("b"), 3);
  assert.equal(appendsTo("c"), 3);
  // Acknowledgements free the window; everything arrives and commits.
  cluster.tickUntil(() => cluster.node("a").status().commit === 12, 50);
  for (const id of ["a", "b", "c"]) assert.equal(Object.keys(cluster.applied(id)).length, 10);
});

/**
 * Scenarios: leadership transfer to a caught-up follower, to a lagging one, and to an unreachable one.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Cluster } from "./harness.ts";
import { lines } from "./transcript.ts";

test("transfer to a caught-up follower: timeout-now at once, the target leads in the next term", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"], trace: ["timeout-now", "vote", "vote-response"] });
  cluster.elect("a");
  cluster.propose("a", "x", "1");
  cluster.deliverAll();
  cluster.takeTranscript();
  assert.deepEqual(
    cluster.on("a", (raft) => raft.transferLeadership("b")),
    { ok: true },
  );
  cluster.deliverAll();
  assert.equal(
    cluster.takeTranscript(),
    lines(`
      t=0 a→b timeout-now term=2
      t=0 b: candidate term=3
      t=0 b→a vote term=3 last=3/2 transfer
      t=0 a: follower term=3
      t=0 b→c vote term=3 last=3/2 transfer
      t=0 c: follower term=3
      t=0 a→b vote granted term=3
      t=0 b: leader term=3
      t=0 c→b vote granted term=3
      t=0 a: follower term=3 leader=b
      t=0 c: follower term=3 leader=b
    `),
  );
  assert.equal(cluster.leader(), "b");
  assert.equal(cluster.node("b").status().term, 3);
});

test("transfer to a lagging follower: the leader catches it up first and refuses proposals meanwhile", () => {
  const cluster = new Cluster({
    voters: ["a", "b", "c"],
    trace: (message) =>
      message.type === "timeout-now" || (message.type.startsWith("append") && message.term === 2),
  });
  cluster.elect("a");
  cluster.isolate("c");
  for (let i = 1; i <= 3; i++) cluster.propose("a", `k${i}`, "v");
  cluster.tickAll(1);
  cluster.heal();
  cluster.takeTranscript();
  assert.deepEqual(
    cluster.on("a", (raft) => raft.transferLeadership("c")),
    { ok: true },
  );
  assert.deepEqual(cluster.propose("a", "y", "1"), { ok: false, reason: "transferring", leader: "a" });
  assert.equal(cluster.node("a").status().transferee, "c");
  cluster.tickAll(1);
  assert.equal(
    cluster.takeTranscript(),
    lines(`
      t=2 a→c append term=2 prev=5/2 n=0 commit=5
      t=2 c→a append-reject term=2 prev=5 hint=3/0 last=2
      t=2 a→c append term=2 prev=2/2 n=3 commit=5
      t=2 c→a append-ok term=2 match=5
      t=2 a→c timeout-now term=2
      t=2 c: candidate term=3
      t=2 a: follower term=3
      t=2 b: follower term=3
      t=2 c: leader term=3
      t=2 a: follower term=3 leader=c
      t=2 b: follower term=3 leader=c
    `),
  );
  assert.equal(cluster.leader(), "c");
  assert.deepEqual(cluster.applied("c"), { k1: "v", k2: "v", k3: "v" });
});

test("transfer to an unreachable node is abandoned after an election timeout; proposals work again", () => {
  const cluster = new Cluster({ voters: ["a", "b", "c"] });
  cluster.elect("a");
  cluster.propose("a", "x", "1");
  cluster.tickAll(1);
  cluster.isolate("c");
  cluster.takeTranscript();
  assert.deepEqual(
    cluster.on("a", (raft) => raft.transferLeadership("c")),
    { ok: true },
  );
  cluster.tickAll(9);
  assert.deepEqual(cluster.propose("a", "y", "1"), { ok: false, reason: "transferring", leader: "a" });
  cluster.tickAll(1);
  assert.equal(cluster.node("a").status().transferee, null, "abandoned after 10 ticks");
  assert.equal(cluster.propose("a", "y", "1").ok, true);
  cluster.deliverAll();
  assert.deepEqual(cluster.applied("b"), { x: "1", y: "1" });
  assert.equal(cluster.leader(), "a");
  assert.equal(cluster.node("a").status().term, 2);
  assert.equal(cluster.takeTranscript(), "", "no role or term changed");
});

/**
 * Scenario: a node that was down while the log was compacted past its last index is brought
 * up by a chunked snapshot transfer (one chunk lost and resent), then receives later entries.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Cluster } from "./harness.ts";
import { lines } from "./transcript.ts";

test("snapshot catch-up: chunked transfer, a lost chunk resent, then later entries", () => {
  let tracing = false;
  const cluster = new Cluster({
    voters: ["a", "b", "c"],
    raft: { snapshotChunkBytes: 32 },
    trace: (message) =>
      tracing && (message.to === "c" || message.from === "c") && !message.type.startsWith("heartbeat"),
  });
  cluster.elect("a");
  cluster.propose("a", "x", "0");
  cluster.deliverAll();
  cluster.takeTranscript();
  cluster.crash("c");
  for (let i = 1; i <= 8; i++) cluster.propose("a", `key${i}`, `value${i}`);
  cluster.tickAll(2);
  const meta = cluster.snapshot("a");
  assert.equal(meta.index, 11);
  assert.ok(meta.sizeBytes > 3 * 32, `${meta.sizeBytes} bytes need several chunks`);
  cluster.propose("a", "after", "snapshot");
  cluster.deliverAll();
  tracing = true;
  cluster.restart("c");
  cluster.drop((message) => message.type === "snapshot" && message.offset === 64, 1);
  cluster.tickAll(1);
  assert.equal(
    cluster
      .node("a")
      .status()
      .peers.find((peer) => peer.id === "c")?.state,
    "snapshot",
  );
  cluster.tickAll(10); // the lost chunk is resent after an election timeout
  cluster.propose("a", "later", "entry");
  cluster.tickAll(1);
  assert.equal(
    cluster.takeTranscript(),
    lines(`
      t=0 c crashed
      t=2 a snapshot index=11 bytes=155
      t=2 c restarted term=2 commit=3
      t=3 c: follower term=2 leader=a
      t=3 a→c append term=2 prev=12/2 n=0 commit=12
      t=3 c→a append-reject term=2 prev=12 hint=4/0 last=3
      t=3 a→c snapshot index=11 offset=0 bytes=32
      t=3 c→a snapshot-ok index=11 next=32
      t=3 a→c snapshot index=11 offset=32 bytes=32
      t=3 c→a snapshot-ok index=11 next=64
      t=3 a→c snapshot index=11 offset=64 bytes=32 DROPPED
      t=13 a→c snapshot index=11 offset=64 bytes=32
      t=13 c→a snapshot-ok index=11 next=96
      t=13 a→c snapshot index=11 offset=96 bytes=32
      t=13 c→a snapshot-ok index=11 next=128
      t=13 a→c snapshot index=11 offset=128 bytes=27 done
      t=13 c installed snapshot index=11
      t=13 c→a snapshot-ok index=11 next=155
      t=13 a→c append term=2 prev=11/2 n=1 commit=12
      t=13 c→a append-ok term=2 match=12
      t=14 a→c append term=2 prev=12/2 n=1 commit=12
      t=14 a→c durable term=2 index=13
      t=14 c→a append-ok term=2 match=13
      t=14 a→c append term=2 prev=13/2 n=0 commit=13 commit-only
    `),
  );
  assert.deepEqual(cluster.applied("c"), cluster.applied("a"));
  assert.equal(cluster.applied("c").later, "entry");
  assert.equal(cluster.node("c").status().firstIndex, meta.index + 1, "c's log starts after the snapshot");
  // c's disk holds the snapshot: after another crash it restarts from it.
  cluster.crash("c");
  cluster.restart("c");
  cluster.tickAll(1);
  assert.deepEqual(cluster.applied("c"), cluster.applied("a"));
});

/**
 * A `weak` read is served by the primary without a quorum check. Since a secondary may answer a
 * write it forwarded as soon as the primary's durable notice and its own write say it is on a
 * quorum (src/raft/DESIGN.md, durable notices), possibly before the primary applied it, a weak
 * read waits until the primary applied what its notices announced: it misses no write
 * acknowledged before it (leadership changes aside, as documented).
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { readBarrier } from "../../src/cluster/read-barrier.ts";
import type { Database } from "../../src/ports/database.ts";
import { encodeKvCommand } from "../runtime/kv-test-machine.ts";
import { RuntimeCluster } from "../runtime/runtime-cluster.ts";

const text = (value: Uint8Array | null): string | null =>
  value === null ? null : new TextDecoder().decode(value);
const put = (key: string, value: string): Uint8Array =>
  encodeKvCommand({ op: "put", key, value: new TextEncoder().encode(value) });
/** Only `strong` reads encode a command; a weak read never does. */
const database: Pick<Database, "encodeCommand"> = {
  encodeCommand: () => {
    throw new Error("a weak read proposes nothing");
  },
};

describe("weak reads on the primary", { timeout: 30_000 }, () => {
  const clusters: RuntimeCluster[] = [];
  after(async () => {
    for (const created of clusters) await created.stopAll();
  });

  it("wait until the primary applied a write a secondary already answered", async () => {
    const c = new RuntimeCluster(["a", "b", "c"]);
    clusters.push(c);
    await c.startAll();
    const leader = await c.electLeader();
    await c.run(() => [...c.members.values()].every((m) => m.runtime.status().leader === leader.id));
    const followers = [...c.members.values()].filter((member) => member !== leader);
    const [follower] = followers;
    assert.ok(follower);
    // The primary hears no acknowledgement: it cannot commit, but its notice lets the follower.
    const isAck = (_to: string, message: unknown) =>
      (message as { type?: unknown }).type === "append-response";
    for (const member of followers) member.loses = isAck;
    const outcome = await c.await(follower.runtime.propose(put("answered", "v"), { forward: true }));
    assert.equal(text(follower.machine.read("answered")), "v", "answered by the secondary");
    const status = leader.runtime.status();
    assert.ok(status.applied < outcome.index, "the primary has not applied it");
    assert.ok(status.durableNoticeIndex >= outcome.index, "but announced it durable");

    let served = false;
    const read = readBarrier({ runtime: leader.runtime, database }, "weak", { timeoutMs: 5000 }).then(() => {
      served = true;
    });
    await c.settle(20);
    assert.equal(served, false, "the weak read waits for the write a secondary acknowledged");
    for (const member of followers) member.loses = null;
    await c.await(read); // the acknowledgements come again after a heartbeat
    assert.equal(text(leader.machine.read("answered")), "v");
  });
});

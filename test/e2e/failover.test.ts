/**
 * Three real node processes on 127.0.0.1: they form one cluster from the same static member
 * list, survive SIGKILL of the leader (no acknowledged write lost), take the killed node back
 * (it catches up and serves the data), and survive SIGSTOP/SIGCONT of a follower and a leader.
 * One story in order: each step starts from the cluster the previous one left.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { ProcessCluster, waitFor } from "./node-processes.ts";

const all = ["n1", "n2", "n3"];

describe("a three-node cluster of real processes", { timeout: 45_000 }, () => {
  let cluster: ProcessCluster;
  /** Every write the cluster acknowledged (200), key → value. */
  const acknowledged = new Map<string, string>();

  before(async () => {
    cluster = await ProcessCluster.create(3);
    for (const name of all) cluster.start(name);
  });
  after(async () => {
    await cluster.killAll();
  });

  const writeAcknowledged = async (leader: string, key: string, value: string): Promise<void> => {
    const response = await cluster.put(leader, key, value);
    assert.equal(response.status, 200, `PUT ${key} on ${leader}: ${await response.text()}`);
    acknowledged.set(key, value);
  };

  const assertAllAcknowledgedReadable = async (leader: string): Promise<void> => {
    for (const [key, value] of acknowledged) {
      const response = await cluster.get(leader, key); // linearizable
      assert.equal(response.status, 200, `GET ${key} on ${leader}`);
      assert.equal(await response.text(), value);
    }
  };

  it("forms one cluster from the same static member list and elects one leader", async () => {
    const leader = await waitFor("one agreed leader", 10_000, () => cluster.leader(all));
    const statuses = await Promise.all(all.map((name) => cluster.status(name)));
    assert.deepEqual(statuses.map((status) => status?.state).sort(), ["PRIMARY", "SECONDARY", "SECONDARY"]);
    assert.ok(statuses.every((status) => status?.term === statuses[0]?.term));
    for (let i = 0; i < 10; i++) await writeAcknowledged(leader, `before-kill-${i}`, `v${i}`);
    const follower = all.find((name) => name !== leader) as string;
    // A secondary forwards writes to the primary over the cluster transport.
    const forwarded = await cluster.put(follower, "via-follower", "x");
    assert.equal(forwarded.status, 200);
    acknowledged.set("via-follower", "x");
  });

  let killed = "";
  it("replaces a SIGKILLed leader within a few seconds and keeps every acknowledged write", async () => {
    killed = (await cluster.leader(all)) as string;
    cluster.signal(killed, "SIGKILL");
    await cluster.node(killed).exited;
    const survivors = all.filter((name) => name !== killed);
    const started = Date.now();
    const leader = await waitFor("a new leader", 5_000, () => cluster.leader(survivors));
    assert.notEqual(leader, killed);
    console.log(`# new leader ${leader} answered ${Date.now() - started} ms after SIGKILL of ${killed}`);
    await assertAllAcknowledgedReadable(leader);
    for (let i = 0; i < 5; i++) await writeAcknowledged(leader, `after-kill-${i}`, `w${i}`);
  });

  it("takes the killed node back: it rejoins, catches up and serves the data", async () => {
    cluster.start(killed);
    const leader = await waitFor("a leader seen by all three", 10_000, () => cluster.leader(all));
    const leaderStatus = await cluster.status(leader);
    assert.ok(leaderStatus);
    await waitFor("the restarted node to catch up", 10_000, async () => {
      const status = await cluster.status(killed);
      return status !== null && status.applied >= leaderStatus.commit;
    });
    // It serves everything acknowledged, from its own state machine.
    for (const [key, value] of acknowledged) {
      const response = await cluster.get(killed, key, "local");
      assert.equal(response.status, 200, `local GET ${key} on the restarted ${killed}`);
      assert.equal(await response.text(), value);
    }
    const linearizable = await cluster.get(killed, "after-kill-4");
    assert.equal(linearizable.status, 200, "a linearizable read on a follower (ReadIndex from the primary)");
    assert.equal(await linearizable.text(), "w4");
  });

  it("survives SIGSTOP/SIGCONT of a follower", async () => {
    const leader = (await cluster.leader(all)) as string;
    const follower = all.find((name) => name !== leader) as string;
    const term = (await cluster.status(leader))?.term;
    cluster.signal(follower, "SIGSTOP");
    for (let i = 0; i < 5; i++) await writeAcknowledged(leader, `follower-paused-${i}`, `p${i}`);
    // Paused for longer than an election timeout (800 ms at most with the lan profile): on resume
    // it catches up on its ticks and times out, but pre-vote keeps it from disturbing the leader.
    await delay(1200);
    cluster.signal(follower, "SIGCONT");
    const commit = (await cluster.status(leader))?.commit ?? Number.POSITIVE_INFINITY;
    await waitFor("the resumed follower to catch up", 10_000, async () => {
      const status = await cluster.status(follower);
      return status !== null && status.applied >= commit;
    });
    assert.equal(await cluster.leader(all), leader, "a paused follower does not disturb the leader");
    assert.equal((await cluster.status(leader))?.term, term, "no new term");
  });

  it("replaces a SIGSTOPped leader; after SIGCONT the old leader steps down and catches up", async () => {
    const paused = (await cluster.leader(all)) as string;
    cluster.signal(paused, "SIGSTOP");
    const others = all.filter((name) => name !== paused);
    const leader = await waitFor("a leader among the others", 5_000, () => cluster.leader(others));
    for (let i = 0; i < 5; i++) await writeAcknowledged(leader, `leader-paused-${i}`, `q${i}`);
    cluster.signal(paused, "SIGCONT");
    const commit = (await cluster.status(leader))?.commit ?? Number.POSITIVE_INFINITY;
    await waitFor("the old leader to step down and catch up", 10_000, async () => {
      const status = await cluster.status(paused);
      return status !== null && status.role === "follower" && status.applied >= commit;
    });
    const now = await waitFor("one agreed leader", 5_000, () => cluster.leader(all));
    await assertAllAcknowledgedReadable(now);
  });
});

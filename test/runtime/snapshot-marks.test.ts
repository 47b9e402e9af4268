/**
 * Snapshot marks: a state machine that persists itself (SQLite; here a test double with
 * `checkpoint`) is made durable and marked every `snapshotEveryEntries` entries, and the log is
 * compacted up to the mark — the state machine is never copied for that. A leader copies it
 * only when a follower needs a snapshot (it fell behind the compacted log), and that follower
 * catches up from the copy and then from the log. A restart over a mark restores nothing; a
 * state machine that lost what its mark says it held refuses to start and says how to fix it.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { isConclaveError } from "../../src/lib/errors.ts";
import type { StateMachineSnapshot } from "../../src/ports/state-machine.ts";
import { encodeKvCommand, type KvResult, KvStateMachine } from "./kv-test-machine.ts";
import { type Member, RuntimeCluster } from "./runtime-cluster.ts";

const appliedKey = "\u0000applied";
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const put = (key: string, value: string): Uint8Array =>
  encodeKvCommand({ op: "put", key, value: encoder.encode(value) });

/**
 * The in-memory KV machine, persistent as far as the runtime can tell: it keeps its applied
 * index in its own state (as SQLite keeps it in `_conclave_meta`, so a copy carries it), and it
 * outlives a restart when the test hands the same object to the new runtime.
 */
class CheckpointingMachine extends KvStateMachine {
  checkpoints = 0;
  copies = 0;
  restores = 0;

  get appliedIndex(): number {
    const value = this.read(appliedKey);
    return value === null ? 0 : Number(decoder.decode(value));
  }

  override apply(data: Uint8Array, index?: number): KvResult {
    const result = super.apply(data);
    super.apply(put(appliedKey, String(index)));
    return result;
  }

  async checkpoint(): Promise<number> {
    this.checkpoints += 1;
    return this.appliedIndex;
  }

  override snapshot(): StateMachineSnapshot {
    this.copies += 1;
    return super.snapshot();
  }

  override async restore(chunks: AsyncIterable<Uint8Array>, sizeBytes: number): Promise<void> {
    this.restores += 1;
    await super.restore(chunks, sizeBytes);
  }
}

const ids = ["a", "b", "c"];

describe("snapshot marks (a state machine that checkpoints)", { timeout: 30_000 }, () => {
  const clusters: RuntimeCluster[] = [];
  after(async () => {
    for (const c of clusters) await c.stopAll();
  });

  /** Three members whose machines checkpoint; a mark every 20 entries, 2 kept behind it. */
  async function markingCluster(): Promise<RuntimeCluster> {
    const c = new RuntimeCluster(ids, { snapshotEveryEntries: 20, snapshotKeepEntries: 2 });
    clusters.push(c);
    for (const id of ids) await c.restart(id, new CheckpointingMachine());
    return c;
  }
  const machineOf = (member: Member): CheckpointingMachine => member.machine as CheckpointingMachine;

  async function writeSixty(c: RuntimeCluster, leader: Member, prefix: string): Promise<void> {
    for (let i = 0; i < 60; i++) await c.await(leader.runtime.propose(put(`${prefix}${i}`, `${i}`)));
  }

  /** Sixty writes, then a secondary that took a mark is stopped. */
  async function stoppedAfterAMark(prefix: string): Promise<{ c: RuntimeCluster; member: Member }> {
    const c = await markingCluster();
    const leader = await c.electLeader();
    await writeSixty(c, leader, prefix);
    const member = [...c.members.values()].find((m) => m !== leader);
    assert.ok(member);
    assert.ok(await c.run(() => member.disk.snapshots.latest()?.inStateMachine === true), "it took a mark");
    await member.runtime.stop();
    return { c, member };
  }

  it("compacts every member's log against marks and never copies a state machine for it", async () => {
    const c = await markingCluster();
    const leader = await c.electLeader();
    await writeSixty(c, leader, "k");
    const members = [...c.members.values()];
    const compacted = await c.run(() =>
      members.every((m) => m.runtime.status().firstIndex > 30 && m.disk.snapshots.latest() !== null),
    );
    assert.ok(compacted, "every member compacted its log");
    for (const member of members) {
      const latest = member.disk.snapshots.latest();
      assert.equal(latest?.inStateMachine, true, `${member.id} keeps a mark`);
      assert.equal(latest?.sizeBytes, 0, "a mark holds no data");
      assert.ok(latest.index <= machineOf(member).appliedIndex, "the machine holds what the mark says");
      assert.ok(machineOf(member).checkpoints >= 2, `${member.id} checkpointed for each mark`);
      assert.equal(machineOf(member).copies, 0, `${member.id} never copied its state machine`);
      assert.deepEqual(
        member.runtime.snapshots,
        {
          latest: { index: latest.index, term: latest.term, kind: "mark", sizeBytes: 0 },
          copyingForFollower: false,
        },
        "conclave node shows the mark",
      );
    }
  });

  it("copies the state machine for a follower that fell behind the log, which then goes on from the log", async () => {
    const c = await markingCluster();
    const leader = await c.electLeader();
    const lagging = [...c.members.values()].find((m) => m !== leader);
    assert.ok(lagging);
    // Down before it took any mark of its own; its state machine survives the restart.
    await c.crash(lagging.id);
    await writeSixty(c, leader, "s");
    assert.ok(leader.runtime.status().firstIndex > 10, "the leader compacted its log");
    assert.equal(machineOf(leader).copies, 0, "no copy before a follower needs one");
    await c.restart(lagging.id, machineOf(lagging));
    const caughtUp = await c.run(() => lagging.runtime.status().applied >= leader.runtime.status().commit);
    assert.ok(caughtUp, "the restarted member caught up");
    assert.equal(machineOf(leader).copies, 1, "the leader copied its state machine once, for it");
    assert.equal(machineOf(lagging).restores, 1, "the follower installed that copy");
    assert.equal(leader.runtime.snapshots.latest?.kind, "copy", "conclave node shows the copy made for it");
    assert.equal(decoder.decode(lagging.machine.read("s0") ?? new Uint8Array()), "0");
    // Writes after the copy reach it from the log.
    await c.await(leader.runtime.propose(put("after", "copy")));
    assert.ok(await c.run(() => lagging.machine.read("after") !== null), "a later write reached it");
    for (const member of c.members.values())
      if (member !== leader) assert.equal(machineOf(member).copies, 0, `${member.id} copied nothing`);
    assert.deepEqual(lagging.fatal, []);
  });

  it("keeps the log after the copy while it is made and sent, so that writes meanwhile need no second copy", async () => {
    // Small chunks: the transfer takes many round trips, and writes go on meanwhile (a mark
    // every 20 entries would compact past the copy many times over).
    const c = new RuntimeCluster(ids, {
      snapshotEveryEntries: 20,
      snapshotKeepEntries: 2,
      snapshotChunkBytes: 16,
    });
    clusters.push(c);
    for (const id of ids) await c.restart(id, new CheckpointingMachine());
    const leader = await c.electLeader();
    const lagging = [...c.members.values()].find((m) => m !== leader);
    assert.ok(lagging);
    await c.crash(lagging.id);
    await writeSixty(c, leader, "w");
    await c.restart(lagging.id, machineOf(lagging));
    const writes: Promise<unknown>[] = [];
    let written = 0;
    const caughtUp = await c.run(() => {
      for (let i = 0; i < 5 && written < 300; i++)
        writes.push(leader.runtime.propose(put(`during${written++}`, "x")));
      return written >= 300 && lagging.runtime.status().applied >= leader.runtime.status().commit;
    }, 2_000);
    await c.await(Promise.all(writes));
    assert.ok(caughtUp, "the restarted member caught up while writes went on");
    assert.ok(await c.run(() => lagging.machine.read("during299") !== null));
    assert.equal(machineOf(leader).copies, 1, "one copy was enough");
    assert.ok(leader.runtime.status().firstIndex > 200, "and the log was compacted again afterwards");
  });

  it("a restart over a mark restores nothing: the state machine already holds it", async () => {
    const { c, member } = await stoppedAfterAMark("r");
    const machine = machineOf(member);
    await c.restart(member.id, machine);
    assert.equal(machine.restores, 0);
    await c.await(c.electLeader().then((l) => l.runtime.propose(put("later", "1"))));
    assert.ok(await c.run(() => machine.read("later") !== null), "it applies new writes after the restart");
    assert.equal(decoder.decode(machine.read("r59") ?? new Uint8Array()), "59");
    assert.deepEqual(member.fatal, []);
  });

  it("a state machine that lost what its mark says it held refuses to start, saying how to fix it", async () => {
    const { c, member } = await stoppedAfterAMark("x");
    // A database replaced by an empty one (or an old copy): the log before the mark is gone.
    await assert.rejects(
      c.restart(member.id, new CheckpointingMachine()),
      (error: unknown) =>
        isConclaveError(error) &&
        error.code === "CONCLAVE_STORAGE_CORRUPT" &&
        /holds only entry 0/.test(error.message) &&
        /wipe its data directory and let it rejoin/.test(error.message),
    );
  });
});

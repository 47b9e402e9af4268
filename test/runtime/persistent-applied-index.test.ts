/**
 * A state machine that persists itself (SQLite) reports `appliedIndex`. After a power loss its
 * database may lag the log (WAL with synchronous=NORMAL loses a suffix of transactions): at
 * start the runtime must re-apply exactly the entries after `appliedIndex` — never skip one,
 * never apply one twice — and restore the snapshot first when the machine is behind it.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { committedAtStart } from "../../src/runtime/raft-runtime.ts";
import { encodeKvCommand, KvStateMachine } from "./kv-test-machine.ts";
import { RuntimeCluster } from "./runtime-cluster.ts";

const put = (key: string, value: string): Uint8Array =>
  encodeKvCommand({ op: "put", key, value: new TextEncoder().encode(value) });

/** A KV machine that says it applied through `appliedIndex` and records what it is given. */
class PersistedMachine extends KvStateMachine {
  appliedIndex: number;
  readonly appliedIndexes: number[] = [];
  restores = 0;

  constructor(appliedIndex: number) {
    super();
    this.appliedIndex = appliedIndex;
  }

  override apply(data: Uint8Array, index?: number): ReturnType<KvStateMachine["apply"]> {
    assert.ok(
      index !== undefined && index > this.appliedIndex,
      `entry ${index} applied again (applied ${this.appliedIndex})`,
    );
    this.appliedIndexes.push(index);
    this.appliedIndex = index;
    return super.apply(data);
  }

  /** State as of before the power loss (applied without going through the runtime). */
  seed(data: Uint8Array): void {
    super.apply(data);
  }

  override async restore(chunks: AsyncIterable<Uint8Array>, sizeBytes: number): Promise<void> {
    this.restores++;
    await super.restore(chunks, sizeBytes);
  }
}

describe("a persistent state machine at start", { timeout: 20_000 }, () => {
  const clusters: RuntimeCluster[] = [];
  after(async () => {
    for (const cluster of clusters) await cluster.stopAll();
  });

  /** A one-node cluster with six committed puts; their (index, data) in order. */
  async function sixPuts(
    overrides = {},
  ): Promise<{ cluster: RuntimeCluster; puts: { index: number; data: Uint8Array }[] }> {
    const cluster = new RuntimeCluster(["a"], overrides);
    clusters.push(cluster);
    await cluster.startAll();
    const leader = await cluster.electLeader();
    const puts: { index: number; data: Uint8Array }[] = [];
    for (let i = 1; i <= 6; i++) {
      const data = put(`k${i}`, `v${i}`);
      const { index } = await cluster.await(leader.runtime.propose(data));
      puts.push({ index, data });
    }
    await leader.runtime.stop();
    return { cluster, puts };
  }

  it("re-applies exactly the entries after a lagging appliedIndex, once each, in order", async () => {
    const { cluster, puts } = await sixPuts();
    // The database kept the first three puts; the last three were lost with the power.
    const kept = puts[2];
    assert.ok(kept !== undefined);
    const machine = new PersistedMachine(kept.index);
    for (const { data } of puts.slice(0, 3)) machine.seed(data);
    await cluster.restart("a", machine);
    await cluster.electLeader();
    await cluster.run(() => machine.appliedIndex >= (puts[5]?.index ?? Number.POSITIVE_INFINITY));
    assert.deepEqual(
      machine.appliedIndexes,
      puts.slice(3).map(({ index }) => index),
    );
    for (let i = 1; i <= 6; i++)
      assert.equal(new TextDecoder().decode(machine.read(`k${i}`) ?? new Uint8Array()), `v${i}`);
  });

  it("applies nothing again when the machine is up to date", async () => {
    const { cluster, puts } = await sixPuts();
    const last = puts[5];
    assert.ok(last !== undefined);
    const machine = new PersistedMachine(last.index);
    await cluster.restart("a", machine);
    await cluster.electLeader();
    const next = await cluster.await(cluster.member("a").runtime.propose(put("k7", "v7")));
    assert.deepEqual(machine.appliedIndexes, [next.index]);
  });

  it("takes the machine's applied index as committed when the commit on disk lags it", async () => {
    const { cluster, puts } = await sixPuts();
    const last = puts[5];
    assert.ok(last !== undefined);
    // Commit-only hard states are staged at most once a second; six puts take well under that.
    const onDisk = await cluster.member("a").disk.stable.open();
    cluster.member("a").disk.stable.crash(); // closes it again for the restart
    assert.ok(onDisk !== null && onDisk.commit < last.index, `commit on disk ${onDisk?.commit}`);
    const machine = new PersistedMachine(last.index); // throws if any entry is applied again
    await cluster.restart("a", machine);
    assert.equal(cluster.member("a").runtime.status().commit, last.index);
    await cluster.electLeader();
    const next = await cluster.await(cluster.member("a").runtime.propose(put("k7", "v7")));
    assert.deepEqual(machine.appliedIndexes, [next.index]);
  });

  it("restores the snapshot first when the machine is behind it, then applies the rest", async () => {
    const { cluster, puts } = await sixPuts({ snapshotEveryEntries: 4, snapshotKeepEntries: 0 });
    const machine = new PersistedMachine(0);
    await cluster.restart("a", machine);
    await cluster.electLeader();
    await cluster.run(() => machine.read("k6") !== null);
    assert.equal(machine.restores, 1, "the snapshot was restored once");
    // Nothing the snapshot covers (at least the first 4 entries) went through apply.
    assert.ok(
      machine.appliedIndexes.every((index) => index > 4),
      `applied ${machine.appliedIndexes.join(",")}`,
    );
    for (let i = 1; i <= 6; i++) assert.notEqual(machine.read(`k${i}`), null);
    const next = await cluster.await(cluster.member("a").runtime.propose(put("k7", "v7")));
    assert.equal(machine.appliedIndexes.at(-1), next.index);
    assert.ok((puts[5]?.index ?? 0) < next.index);
  });
});

describe("committedAtStart", () => {
  const entry = (index: number) => ({ index, term: 1, kind: "command" as const, data: new Uint8Array() });
  const entries = [entry(1), entry(2), entry(3), entry(4)];

  it("raises the stored commit to the machine's applied index, within the log", () => {
    const initial = { hardState: { term: 2, vote: "a", commit: 1 }, snapshot: null, entries };
    assert.deepEqual(committedAtStart(initial, 3).hardState, { term: 2, vote: "a", commit: 3 });
    assert.equal(committedAtStart(initial, 9).hardState?.commit, 4, "never past the last entry");
  });

  it("keeps a stored commit that is already ahead, and a start with nothing applied", () => {
    const initial = { hardState: { term: 2, vote: null, commit: 3 }, snapshot: null, entries };
    assert.equal(committedAtStart(initial, 2), initial);
    assert.equal(committedAtStart(initial, 0), initial);
  });

  it("builds a hard state when none was stored", () => {
    const initial = { hardState: null, snapshot: null, entries };
    assert.deepEqual(committedAtStart(initial, 2).hardState, { term: 0, vote: null, commit: 2 });
  });
});

/**
 * The applier's background snapshots: the state machine copies while entries keep being
 * applied and names the index its copy holds; the snapshot's term and membership must be those
 * of that point in the log, or of a later point reached only by configuration entries (which
 * leave the state machine as it was).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemorySnapshotStore } from "../../src/adapters/storage/memory-snapshot-store.ts";
import type { StateMachine, StateMachineSnapshot } from "../../src/ports/state-machine.ts";
import type { Entry, Membership } from "../../src/raft/types.ts";
import { Applier } from "../../src/runtime/applier.ts";
import { ProposalTable } from "../../src/runtime/pending-calls.ts";

const three: Membership = { voters: ["a", "b", "c"], learners: [] };
const four: Membership = { voters: ["a", "b", "c", "d"], learners: [] };

/** A state machine whose background copy finishes when the test says, holding the index it says. */
class ControlledMachine implements StateMachine {
  appliedIndex = 0;
  finishCopy: (index: number) => void = () => {};
  apply(_data: Uint8Array, index: number): unknown {
    this.appliedIndex = index;
    return null;
  }
  snapshot(): StateMachineSnapshot {
    return { sizeBytes: 1, chunks: oneByte() };
  }
  snapshotInBackground(): Promise<StateMachineSnapshot & { index: number }> {
    return new Promise((resolve) => {
      this.finishCopy = (index) => resolve({ index, sizeBytes: 1, chunks: oneByte() });
    });
  }
  async restore(): Promise<void> {}
}

async function* oneByte(): AsyncGenerator<Uint8Array> {
  yield new Uint8Array([1]);
}

const command = (index: number, term = 1): Entry => ({
  index,
  term,
  kind: "command",
  data: new Uint8Array(),
});
const config = (index: number, membership: Membership, term = 1): Entry => ({
  index,
  term,
  kind: "config",
  membership,
});

async function setup() {
  const machine = new ControlledMachine();
  const snapshots = new MemorySnapshotStore();
  await snapshots.open();
  const applier = new Applier(machine, snapshots, new ProposalTable(), {
    point: { index: 0, term: 0, membership: three },
    lastSnapshotIndex: 0,
  });
  return { machine, snapshots, applier };
}

describe("the applier's background snapshots", () => {
  it("label the copy with the point of the index it holds", async () => {
    const { machine, applier } = await setup();
    applier.applyAll([command(1), command(2)]);
    const taking = applier.takeSnapshot();
    applier.applyAll([command(3, 2), command(4, 2)]);
    machine.finishCopy(3);
    assert.deepEqual(await taking, { index: 3, term: 2, membership: three, sizeBytes: 1 });
  });

  it("take configuration entries after the copy's last command into the label", async () => {
    const { machine, applier, snapshots } = await setup();
    applier.applyAll([command(1), command(2)]);
    const taking = applier.takeSnapshot();
    applier.applyAll([config(3, four, 3), command(4, 3)]);
    machine.finishCopy(2);
    const meta = await taking;
    assert.deepEqual(meta, { index: 3, term: 3, membership: four, sizeBytes: 1 });
    assert.deepEqual(snapshots.latest(), meta);
  });

  it("refuse a copy of an index that was never applied while it was taken", async () => {
    const { machine, applier } = await setup();
    applier.applyAll([command(1), command(2)]);
    const taking = applier.takeSnapshot();
    machine.finishCopy(1);
    await assert.rejects(taking, /holds index 1, which was not applied while it was taken/);
  });
});

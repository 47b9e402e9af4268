/**
 * Model test: random sequences of append (with conflicting overwrites), setHardState, sync,
 * snapshot + compact and crashes (plain, or in the middle of a sync with a torn write), run
 * against the file storage and the memory storage, compared with a model of what must survive.
 */
import assert from "node:assert/strict";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import fc from "fast-check";
import { reconcileHardState } from "../../src/adapters/storage/raft-storage.ts";
import type { RaftStorage } from "../../src/ports/storage.ts";
import type { Entry, HardState, SnapshotMeta } from "../../src/raft/types.ts";
import { commandEntry, type StorageLocation, snapshotMeta, writeSnapshot } from "./storage-compliance.ts";
import { fileHarness, memoryHarness, segmentRecords, tearWrite } from "./storage-harnesses.ts";

type Operation =
  | { kind: "append"; count: number; back: number; newTerm: boolean; dataBytes: number }
  | { kind: "hardState"; bumpTerm: boolean; vote: string | null; commitFraction: number }
  | { kind: "sync" }
  | { kind: "snapshot"; fraction: number }
  | { kind: "crash" }
  | { kind: "tornSync"; cutFraction: number; tearHardState: boolean };

const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("append" as const),
      count: fc.integer({ min: 1, max: 8 }),
      back: fc.integer({ min: 0, max: 6 }),
      newTerm: fc.boolean(),
      dataBytes: fc.integer({ min: 0, max: 120 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("hardState" as const),
      bumpTerm: fc.boolean(),
      vote: fc.constantFrom(null, "n1", "n2"),
      commitFraction: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  { weight: 4, arbitrary: fc.constant({ kind: "sync" as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("snapshot" as const),
      fraction: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "crash" as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("tornSync" as const),
      cutFraction: fc.double({ min: 0, max: 1, noNaN: true }),
      tearHardState: fc.boolean(),
    }),
  },
);

/** How a harness tears the write of an interrupted sync (the memory disk cannot: it is atomic). */
interface Tearing {
  before(): Promise<Map<string, number>>;
  tear(sizesBefore: Map<string, number>, cutFraction: number, tearHardState: boolean): Promise<void>;
}

/** What the runs exercised, printed at the end so a reader sees what was tried. */
const figures = {
  sequences: 0,
  operations: 0,
  crashes: 0,
  tornSyncs: 0,
  entriesCutByTear: 0,
  hardStatesTorn: 0,
  maxIndex: 0,
};

function sameEntry(a: Entry | undefined, b: Entry | undefined): boolean {
  return a !== undefined && b !== undefined && a.index === b.index && a.term === b.term;
}

function commonPrefixLength(a: readonly Entry[], b: readonly Entry[]): number {
  let length = 0;
  while (sameEntry(a[length], b[length])) length += 1;
  return length;
}

class Model {
  current: Entry[] = [];
  durable: Entry[] = [];
  snapshot: SnapshotMeta | null = null;
  staged: HardState | null = null;
  durableHardState: HardState | null = null;
  term = 1;

  get lastIndex(): number {
    return this.current.at(-1)?.index ?? this.snapshot?.index ?? 0;
  }

  afterSnapshot(entries: readonly Entry[]): Entry[] {
    return entries.filter((entry) => entry.index > (this.snapshot?.index ?? 0));
  }
}

async function runOperation(
  operation: Operation,
  model: Model,
  storage: RaftStorage,
  location: StorageLocation,
  tearing: Tearing | null,
): Promise<RaftStorage> {
  figures.operations += 1;
  figures.maxIndex = Math.max(figures.maxIndex, model.lastIndex);
  switch (operation.kind) {
    case "append": {
      const lowest = (model.snapshot?.index ?? 0) + 1;
      const from = Math.max(lowest, model.lastIndex + 1 - operation.back);
      if (operation.newTerm || from <= model.lastIndex) model.term += 1;
      const entries = Array.from({ length: operation.count }, (_, offset) =>
        commandEntry(from + offset, model.term, operation.dataBytes),
      );
      storage.append(entries);
      model.current = [...model.current.filter((entry) => entry.index < from), ...entries];
      return storage;
    }
    case "hardState": {
      if (operation.bumpTerm) model.term += 1;
      const commit = Math.floor(operation.commitFraction * (model.lastIndex + 1));
      model.staged = { term: model.term, vote: operation.vote, commit };
      storage.setHardState(model.staged);
      return storage;
    }
    case "sync":
      await storage.sync();
      model.durable = [...model.current];
      if (model.staged !== null) model.durableHardState = model.staged;
      model.staged = null;
      return storage;
    case "snapshot": {
      // Only synced entries are ever snapshotted (they were applied).
      const synced = model.current.slice(0, commonPrefixLength(model.current, model.durable));
      const chosen = synced[Math.floor(operation.fraction * synced.length)];
      if (chosen === undefined) return storage;
      const meta = snapshotMeta(chosen.index, chosen.term, 64);
      await writeSnapshot(storage.snapshots, meta);
      await storage.compact(chosen.index);
      model.snapshot = meta;
      model.current = model.afterSnapshot(model.current);
      model.durable = model.afterSnapshot(model.durable);
      return storage;
    }
    case "crash":
      return crashAndCheck(model, storage, location);
    case "tornSync":
      return tornSyncAndCheck(operation, model, storage, location, tearing);
  }
}

async function crashAndCheck(
  model: Model,
  storage: RaftStorage,
  location: StorageLocation,
): Promise<RaftStorage> {
  figures.crashes += 1;
  await location.crash(storage);
  const { storage: reopened, recovered } = await location.open();
  const expected = model.afterSnapshot(model.durable);
  assert.deepEqual(recovered.entries, expected);
  assert.deepEqual(recovered.snapshot, model.snapshot);
  assert.deepEqual(recovered.hardState, reconcileHardState(model.durableHardState, model.snapshot, expected));
  model.current = expected;
  model.durable = expected;
  model.staged = null;
  return reopened;
}

async function tornSyncAndCheck(
  operation: Extract<Operation, { kind: "tornSync" }>,
  model: Model,
  storage: RaftStorage,
  location: StorageLocation,
  tearing: Tearing | null,
): Promise<RaftStorage> {
  const before = model.afterSnapshot(model.durable);
  const after = model.afterSnapshot(model.current);
  const hardStateBefore = model.durableHardState;
  const hardStateAfter = model.staged ?? hardStateBefore;
  const wroteHardState = JSON.stringify(hardStateAfter) !== JSON.stringify(hardStateBefore);
  const sizes = await tearing?.before();
  await storage.sync();
  const tearHardState = operation.tearHardState && wroteHardState;
  if (tearing !== null && sizes !== undefined)
    await tearing.tear(sizes, operation.cutFraction, tearHardState);
  await location.crash(storage);
  const { storage: reopened, recovered } = await location.open();
  const kept = recovered.entries;
  figures.tornSyncs += 1;
  figures.entriesCutByTear += after.length - kept.length;
  if (tearing !== null && tearHardState) figures.hardStatesTorn += 1;
  // Never a hole or a foreign entry: a prefix of the log after the sync, at least what both share.
  assert.ok(kept.length <= after.length, "recovered more entries than were written");
  assert.deepEqual(kept, after.slice(0, kept.length));
  assert.ok(kept.length >= commonPrefixLength(before, after), "lost entries synced before the torn sync");
  if (tearing === null) assert.equal(kept.length, after.length);
  const durableHardState = tearing !== null && tearHardState ? hardStateBefore : hardStateAfter;
  assert.deepEqual(recovered.hardState, reconcileHardState(durableHardState, model.snapshot, kept));
  model.current = kept;
  model.durable = kept;
  model.durableHardState = durableHardState;
  model.staged = null;
  return reopened;
}

/** Cuts the last segment inside the bytes the sync wrote; damages the hard-state slot it wrote. */
function fileTearing(directory: string): Tearing {
  const logDirectory = join(directory, "log");
  return {
    async before() {
      const sizes = new Map<string, number>();
      for (const name of await readdir(logDirectory))
        sizes.set(name, (await segmentRecords(join(logDirectory, name))).endBytes);
      return sizes;
    },
    async tear(sizesBefore, cutFraction, tearHardState) {
      const last = (await readdir(logDirectory)).sort().at(-1);
      if (last !== undefined) {
        const path = join(logDirectory, last);
        const startBytes = sizesBefore.get(last) ?? 32;
        const { endBytes } = await segmentRecords(path);
        const cutBytes = startBytes + Math.floor(cutFraction * (endBytes - startBytes));
        // The active segment is pre-sized: what the write did not get to disk reads as zeros.
        if (endBytes > startBytes) await tearWrite(path, cutBytes, endBytes);
      }
      if (tearHardState) {
        const path = join(directory, "hardstate");
        const bytes = await readFile(path);
        const newestSlot = bytes.readBigUInt64LE(8) > bytes.readBigUInt64LE(512 + 8) ? 0 : 1;
        bytes[newestSlot * 512 + 21] = (bytes[newestSlot * 512 + 21] ?? 0) ^ 0x5a;
        await writeFile(path, bytes);
      }
    },
  };
}

async function runSequence(operations: Operation[], location: StorageLocation, tearing: Tearing | null) {
  const model = new Model();
  figures.sequences += 1;
  let { storage } = await location.open();
  try {
    for (const operation of operations)
      storage = await runOperation(operation, model, storage, location, tearing);
    // Whatever happened, a final crash recovers exactly what was synced.
    storage = await crashAndCheck(model, storage, location);
  } finally {
    await location.crash(storage);
    await location.dispose();
  }
}

test("memory storage matches the model through appends, conflicts, compaction and crashes", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(operationArbitrary, { minLength: 10, maxLength: 120 }), async (operations) => {
      await runSequence(operations, await memoryHarness.fresh(), null);
    }),
    { numRuns: 300 },
  );
  console.log(`memory model: ${JSON.stringify(figures)}`);
  Object.assign(figures, {
    sequences: 0,
    operations: 0,
    crashes: 0,
    tornSyncs: 0,
    entriesCutByTear: 0,
    hardStatesTorn: 0,
    maxIndex: 0,
  });
});

test("file storage matches the model, torn writes included (small segments)", async () => {
  const harness = fileHarness({ segmentBytesMax: 700 });
  await fc.assert(
    fc.asyncProperty(fc.array(operationArbitrary, { minLength: 10, maxLength: 80 }), async (operations) => {
      const location = await harness.freshDirectory();
      await runSequence(operations, location, fileTearing(location.directory));
    }),
    { numRuns: 100 },
  );
  console.log(`file model: ${JSON.stringify(figures)}`);
});

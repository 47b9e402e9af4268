/**
 * The one-time adoption of an unnamed standalone node's stored membership under its new Raft id
 * (src/adapters/storage/adopt-standalone.ts): what it writes, what it refuses, and that a crash at
 * any byte of its single write leaves either the old state or one that the next start finishes.
 */
import assert from "node:assert/strict";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  adoptStandaloneMembership,
  adoptUnnamedStandalone,
  latestMembership,
} from "../../src/adapters/storage/adopt-standalone.ts";
import { createFileStorage } from "../../src/adapters/storage/file-storage.ts";
import { MemoryDisk } from "../../src/adapters/storage/memory-storage.ts";
import { openNodeIdentity, readNodeIdentity } from "../../src/config/node-identity.ts";
import { isConclaveError } from "../../src/lib/errors.ts";
import type { RaftStorage, RecoveredState } from "../../src/ports/storage.ts";
import type { Entry, HardState, Membership } from "../../src/raft/types.ts";
import { segmentRecords, tearWrite, temporaryDirectory } from "./storage-harnesses.ts";

const ids = { fromId: "standalone", toId: "n1" };
const standaloneMembership: Membership = { voters: ["standalone"], learners: [] };
const removeRow = new Uint8Array([0xc1, 0x01]);

/** What a standalone node stores: the founding entry, then `commands` writes, in term 2. */
function standaloneLog(membership: Membership, commands: number): Entry[] {
  const entries: Entry[] = [{ kind: "config", index: 1, term: 1, membership }];
  for (let i = 0; i < commands; i++)
    entries.push({ kind: "command", index: i + 2, term: 2, data: new Uint8Array([i]) });
  return entries;
}

async function store(storage: RaftStorage, entries: Entry[], hardState: HardState): Promise<void> {
  await storage.open();
  storage.append(entries);
  storage.setHardState(hardState);
  await storage.sync();
  await storage.close();
}

async function reopen(storage: RaftStorage): Promise<RecoveredState> {
  try {
    return await storage.open();
  } finally {
    await storage.close();
  }
}

const hardState: HardState = { term: 2, vote: "standalone", commit: 4 };

describe("adoptStandaloneMembership", () => {
  it("appends the commands, then voters [new id], in the hard state's term, and leaves the rest as it was", async () => {
    const disk = new MemoryDisk();
    const before = standaloneLog(standaloneMembership, 5);
    await store(disk.storage(), before, hardState);
    const outcome = await adoptStandaloneMembership(disk.storage(), ids, "memory", [removeRow]);
    assert.deepEqual(outcome, { kind: "adopted", fromId: "standalone", toId: "n1", index: 8, term: 2 });
    disk.crash(); // only what was synced counts
    const after = await reopen(disk.storage());
    assert.deepEqual(after.entries.slice(0, before.length), before, "the stored entries are unchanged");
    assert.deepEqual(after.entries.slice(before.length), [
      { kind: "command", index: 7, term: 2, data: removeRow },
      { kind: "config", index: 8, term: 2, membership: { voters: ["n1"], learners: [] } },
    ]);
    assert.deepEqual(after.hardState, hardState, "term, vote and commit are untouched");
    assert.deepEqual(latestMembership(after), { voters: ["n1"], learners: [] });
  });

  it("is done once: a second start finds the membership in place and writes nothing", async () => {
    const disk = new MemoryDisk();
    await store(disk.storage(), standaloneLog(standaloneMembership, 2), hardState);
    await adoptStandaloneMembership(disk.storage(), ids, "memory", [removeRow]);
    const lastIndex = (await reopen(disk.storage())).entries.at(-1)?.index;
    assert.deepEqual(await adoptStandaloneMembership(disk.storage(), ids, "memory", [removeRow]), {
      kind: "in-place",
    });
    assert.equal((await reopen(disk.storage())).entries.at(-1)?.index, lastIndex);
  });

  it("adopts a membership held only by a snapshot (the log compacted behind it)", async () => {
    const disk = new MemoryDisk();
    const storage = disk.storage();
    await storage.open();
    storage.append(standaloneLog(standaloneMembership, 9));
    storage.setHardState({ term: 2, vote: "standalone", commit: 10 });
    await storage.sync();
    const meta = { index: 10, term: 2, membership: standaloneMembership, sizeBytes: 3 };
    const writer = await storage.snapshots.begin(meta);
    await writer.write(new Uint8Array([1, 2, 3]));
    await writer.finish();
    await storage.compact(10);
    await storage.close();
    const outcome = await adoptStandaloneMembership(disk.storage(), ids, "memory");
    assert.deepEqual(outcome, { kind: "adopted", fromId: "standalone", toId: "n1", index: 11, term: 2 });
    const after = await reopen(disk.storage());
    assert.equal(after.snapshot?.index, 10, "the snapshot stays");
    assert.deepEqual(after.entries, [
      { kind: "config", index: 11, term: 2, membership: { voters: ["n1"], learners: [] } },
    ]);
  });

  it("has nothing to adopt in empty storage", async () => {
    const disk = new MemoryDisk();
    assert.deepEqual(await adoptStandaloneMembership(disk.storage(), ids, "memory"), { kind: "none" });
    assert.deepEqual((await reopen(disk.storage())).entries, []);
  });

  const refused: [string, Membership][] = [
    ["two voters", { voters: ["standalone", "n2"], learners: [] }],
    ["a learner", { voters: ["standalone"], learners: ["n2"] }],
    ["another id", { voters: ["n7"], learners: [] }],
    ["no voter", { voters: [], learners: [] }],
  ];
  for (const [what, membership] of refused) {
    it(`refuses a stored membership with ${what}, writing nothing`, async () => {
      const disk = new MemoryDisk();
      const before = standaloneLog(membership, 3);
      await store(disk.storage(), before, hardState);
      await assert.rejects(
        adoptStandaloneMembership(disk.storage(), ids, "/data/n1", [removeRow]),
        (error) => {
          assert.ok(isConclaveError(error, "CONCLAVE_MEMBERSHIP_MISMATCH"));
          assert.match(error.message, /\/data\/n1/);
          assert.match(error.message, /cannot be taken over safely as "n1"/);
          return true;
        },
      );
      assert.deepEqual((await reopen(disk.storage())).entries, before);
    });
  }

  it("on an unnamed start, refuses a log adopted by a start that did not finish, naming the way out", async () => {
    const disk = new MemoryDisk();
    await store(disk.storage(), standaloneLog(standaloneMembership, 2), hardState);
    await adoptStandaloneMembership(disk.storage(), ids, "memory", [removeRow]);
    const unnamed = { fromId: "standalone", toId: "standalone" };
    await assert.rejects(adoptStandaloneMembership(disk.storage(), unnamed, "memory"), (error) => {
      assert.ok(isConclaveError(error, "CONCLAVE_MEMBERSHIP_MISMATCH"));
      assert.match(error.message, /node\.name = "n1@<host>" to finish/);
      return true;
    });
  });

  it("leaves the old state when the disk is full, and a later start adopts", async () => {
    const disk = new MemoryDisk();
    const before = standaloneLog(standaloneMembership, 3);
    await store(disk.storage(), before, hardState);
    disk.log.injectFault("disk-full");
    await assert.rejects(adoptStandaloneMembership(disk.storage(), ids, "memory", [removeRow]), (error) =>
      isConclaveError(error, "CONCLAVE_DISK_FULL"),
    );
    disk.crash();
    assert.deepEqual((await reopen(disk.storage())).entries, before);
    const outcome = await adoptStandaloneMembership(disk.storage(), ids, "memory", [removeRow]);
    assert.equal(outcome.kind, "adopted");
  });

  it("a crash at any byte of the adoption's write leaves the old log or a prefix the next start completes", async () => {
    const directory = await temporaryDirectory();
    try {
      const before = standaloneLog(standaloneMembership, 4);
      await store(createFileStorage(directory), before, hardState);
      const segment = join(directory, "log", (await readdir(join(directory, "log")))[0] ?? "");
      const sizeBefore = (await segmentRecords(segment)).endBytes;
      await adoptStandaloneMembership(createFileStorage(directory), ids, directory, [removeRow]);
      const sizeAfter = (await segmentRecords(segment)).endBytes;
      assert.ok(sizeAfter > sizeBefore);
      const adopted = await copyOf(directory);
      for (let cut = sizeBefore; cut <= sizeAfter; cut++) {
        await restore(directory, adopted);
        await tearWrite(segment, cut, sizeAfter); // what a power cut during the write can leave
        const recovered = await reopen(createFileStorage(directory));
        assert.deepEqual(
          recovered.entries.slice(0, before.length),
          before,
          `cut at ${cut}: old entries kept`,
        );
        const outcome = await adoptStandaloneMembership(createFileStorage(directory), ids, directory, [
          removeRow,
        ]);
        const final = await reopen(createFileStorage(directory));
        assert.deepEqual(latestMembership(final), { voters: ["n1"], learners: [] }, `cut at ${cut}`);
        const beforeMembership = final.entries.at(-2);
        assert.ok(
          beforeMembership?.kind === "command" && beforeMembership.data.join() === removeRow.join(),
          `cut at ${cut}: the commands precede the membership entry`,
        );
        assert.equal(outcome.kind, cut === sizeAfter ? "in-place" : "adopted", `cut at ${cut}`);
      }
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});

/** The files of a data directory, to put back between crash cases. */
async function copyOf(directory: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const entry of await readdir(directory, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files.set(path, await readFile(path));
  }
  return files;
}

async function restore(directory: string, files: Map<string, Buffer>): Promise<void> {
  await rm(join(directory, "log"), { recursive: true, force: true });
  for (const [path, content] of files) {
    await mkdir(join(path, ".."), { recursive: true });
    await writeFile(path, content);
  }
}

describe("adoptUnnamedStandalone (at node start, before identity.json records the name)", () => {
  async function unnamedStandaloneDirectory(): Promise<string> {
    const directory = await temporaryDirectory();
    await openNodeIdentity({ dataDir: directory, nodeName: undefined });
    await store(createFileStorage(directory), standaloneLog(standaloneMembership, 2), hardState);
    return directory;
  }
  const start = (dataDir: string, nodeName: string | undefined, raftId: string) =>
    adoptUnnamedStandalone({ dataDir, nodeName, raftId, unnamedRaftId: "standalone" });

  it("adopts under the data directory's lock and leaves recording the name to the identity", async () => {
    const directory = await unnamedStandaloneDirectory();
    try {
      const outcome = await start(directory, "n1@10.0.0.5", "n1");
      assert.equal(outcome.kind, "adopted");
      assert.equal((await readNodeIdentity(directory))?.nodeName, null, "not recorded yet");
      await assert.rejects(stat(join(directory, "LOCK")), "the lock is released");
      assert.deepEqual(latestMembership(await reopen(createFileStorage(directory))), {
        voters: ["n1"],
        learners: [],
      });
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it("does not touch storage that another running process holds", async () => {
    const directory = await unnamedStandaloneDirectory();
    try {
      await writeFile(join(directory, "LOCK"), `${process.ppid}\n`); // a live process that is not us
      await assert.rejects(start(directory, "n1@10.0.0.5", "n1"), (error) =>
        isConclaveError(error, "CONCLAVE_DATA_DIR_LOCKED"),
      );
      assert.deepEqual(latestMembership(await reopen(createFileStorage(directory))), standaloneMembership);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it("refuses to start a named node without a name", async () => {
    const directory = await temporaryDirectory();
    try {
      await openNodeIdentity({ dataDir: directory, nodeName: "n1@10.0.0.5" });
      await assert.rejects(start(directory, undefined, "standalone"), (error) => {
        assert.ok(isConclaveError(error, "CONCLAVE_IDENTITY_MISMATCH"));
        assert.match(error.message, /set node\.name = "n1@10\.0\.0\.5"/);
        return true;
      });
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it("does nothing for a fresh directory, a named node, or an unnamed node started unnamed", async () => {
    const fresh = await temporaryDirectory();
    const unnamed = await unnamedStandaloneDirectory();
    try {
      assert.deepEqual(await start(join(fresh, "new"), "n1@h", "n1"), { kind: "none" });
      await openNodeIdentity({ dataDir: fresh, nodeName: "n1@h" });
      assert.deepEqual(await start(fresh, "n1@h", "n1"), { kind: "none" });
      assert.deepEqual(await start(unnamed, undefined, "standalone"), { kind: "in-place" });
    } finally {
      await rm(fresh, { recursive: true, force: true });
      await rm(unnamed, { recursive: true, force: true });
    }
  });
});

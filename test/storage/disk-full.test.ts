/**
 * A full disk (a 1 MiB tmpfs, filled up): sync rejects with CONCLAVE_DISK_FULL, the partial
 * write is cut back, nothing synced is lost, and the same storage continues once space is freed.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { open, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { createFileStorage } from "../../src/adapters/storage/file-storage.ts";
import { isConclaveError } from "../../src/lib/errors.ts";
import { entryRange, snapshotMeta, writeSnapshot } from "./storage-compliance.ts";
import { segmentRecords, temporaryDirectory } from "./storage-harnesses.ts";

let mountPoint = "";
let mountProblem: string | null = null;

before(async () => {
  mountPoint = await temporaryDirectory("conclave-disk-full-");
  const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mountPoint], {
    encoding: "utf8",
    timeout: 10_000,
  });
  if (mounted.error !== undefined || mounted.status !== 0) {
    mountProblem = `cannot mount a tmpfs here (needs root and mount permission): ${mounted.error?.message ?? mounted.stderr.trim()}`;
  }
});

after(async () => {
  // Lazy unmount: detaches even if a failed test left a file open on it.
  if (mountProblem === null) spawnSync("umount", ["-l", mountPoint], { timeout: 10_000 });
  await rm(mountPoint, { recursive: true, force: true });
});

/** Writes a filler file until the disk is full; returns its path. */
async function fillDisk(directory: string): Promise<string> {
  const path = join(directory, "filler");
  const handle = await open(path, "w");
  const block = Buffer.alloc(4096, 1);
  try {
    for (let blocks = 0; blocks < 1024; blocks += 1) await handle.write(block);
    assert.fail("the 1 MiB tmpfs never filled up");
  } catch (error) {
    assert.equal((error as NodeJS.ErrnoException).code, "ENOSPC");
  } finally {
    await handle.close();
  }
  return path;
}

test("a full disk rejects sync with CONCLAVE_DISK_FULL, loses nothing, and recovers", async (t) => {
  if (mountProblem !== null) {
    t.skip(mountProblem);
    return;
  }
  const dataDirectory = join(mountPoint, "data");
  const storage = createFileStorage(dataDirectory);
  await storage.open();
  storage.append(entryRange(1, 100, 1));
  storage.setHardState({ term: 1, vote: "n1", commit: 100 });
  await storage.sync();
  const segmentPath = join(dataDirectory, "log", "00000000000000000001.seg");
  const syncedBytes = (await segmentRecords(segmentPath)).endBytes;

  const filler = await fillDisk(mountPoint);
  // 200 entries of 300 bytes: more than any space left in the last partial page.
  const pending = entryRange(101, 300, 1).map((entry) => ({ ...entry, data: new Uint8Array(300) }));
  storage.append(pending);
  storage.setHardState({ term: 1, vote: "n1", commit: 300 });
  await assert.rejects(storage.sync(), (error) => {
    assert.ok(isConclaveError(error, "CONCLAVE_DISK_FULL"), String(error));
    assert.match(error.message, new RegExp(dataDirectory.replaceAll("/", "\\/")));
    assert.ok(Number(error.details.bytesNeeded) > 0);
    return true;
  });
  assert.equal(
    (await segmentRecords(segmentPath)).endBytes,
    syncedBytes,
    "the partial write was not cut back",
  );

  const snapshotError = await writeSnapshot(storage.snapshots, snapshotMeta(100, 1, 512 * 1024)).catch(
    (e) => e,
  );
  assert.ok(isConclaveError(snapshotError, "CONCLAVE_DISK_FULL"), String(snapshotError));
  assert.equal(storage.snapshots.latest(), null);

  // Space freed: the same storage writes what was pending, without being reopened.
  await rm(filler);
  await storage.sync();
  storage.append(entryRange(301, 301, 1));
  await storage.sync();
  await storage.close();

  const reopened = createFileStorage(dataDirectory);
  const recovered = await reopened.open();
  assert.equal(recovered.entries.length, 301);
  assert.deepEqual(recovered.entries.slice(100, 300), pending);
  assert.deepEqual(recovered.hardState, { term: 1, vote: "n1", commit: 300 });
  await reopened.close();
});

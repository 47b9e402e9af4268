/**
 * A full disk (a 1 MiB tmpfs, filled up): sync rejects with CONCLAVE_DISK_FULL, the partial
 * write is cut back, nothing synced is lost, and the same storage continues once space is freed;
 * a snapshot being written keeps what it had and takes the rejected chunk (or finish) again.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { open, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { createFileStorage } from "../../src/adapters/storage/file-storage.ts";
import { isConclaveError } from "../../src/lib/errors.ts";
import { entryRange, snapshotBytes, snapshotMeta, writeSnapshot } from "./storage-compliance.ts";
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

/** Bytes a finished snapshot file holds besides its data (description and CRC), measured. */
async function snapshotFileOverhead(meta: ReturnType<typeof snapshotMeta>): Promise<number> {
  const directory = join(mountPoint, "probe");
  const probe = createFileStorage(directory);
  await probe.open();
  await writeSnapshot(probe.snapshots, meta);
  await probe.close();
  const size = (await stat(join(directory, "snapshots", `${meta.term}-${meta.index}.snap`))).size;
  await rm(directory, { recursive: true, force: true });
  return size - meta.sizeBytes;
}

test("a snapshot write or finish that finds the disk full keeps what it had, and goes on once there is room", async (t) => {
  if (mountProblem !== null) {
    t.skip(mountProblem);
    return;
  }
  const dataDirectory = join(mountPoint, "snapshot-data");
  const storage = createFileStorage(dataDirectory);
  await storage.open();
  const temporaryBytes = async (): Promise<number> => {
    const names = (await readdir(join(dataDirectory, "snapshots"))).filter((name) => name.endsWith(".tmp"));
    assert.equal(names.length, 1, `one unfinished snapshot: ${names.join(", ")}`);
    return (await stat(join(dataDirectory, "snapshots", names[0] as string))).size;
  };

  // A chunk write: rejected, the file cut back to before it; the same chunk is written later.
  const meta = snapshotMeta(100, 1, 256 * 1024);
  const bytes = snapshotBytes(meta.sizeBytes, 5);
  const chunk = 4096;
  const writer = await storage.snapshots.begin(meta);
  for (let offset = 0; offset < 64 * 1024; offset += chunk)
    await writer.write(bytes.subarray(offset, offset + chunk));
  let filler = await fillDisk(mountPoint);
  await assert.rejects(writer.write(bytes.subarray(64 * 1024, 64 * 1024 + chunk)), (error) =>
    isConclaveError(error, "CONCLAVE_DISK_FULL"),
  );
  assert.equal(await temporaryBytes(), 64 * 1024, "the partial chunk was cut back");
  await rm(filler);
  for (let offset = 64 * 1024; offset < bytes.length; offset += chunk)
    await writer.write(bytes.subarray(offset, offset + chunk));
  await writer.finish();
  assert.deepEqual(storage.snapshots.latest(), meta);
  assert.deepEqual(storage.snapshots.read(meta, 0, meta.sizeBytes), bytes);

  // A finish: the data and the description end 2 bytes before a page does, so the CRC after
  // them needs a page the full disk does not have. Finish again later: both are rewritten in
  // place (appending the description a second time would corrupt the file).
  const overhead = await snapshotFileOverhead(snapshotMeta(200, 1, 8000));
  const small = snapshotMeta(200, 1, 8192 - (overhead - 4) - 2);
  assert.equal(await snapshotFileOverhead(small), overhead, "the description has the same length");
  const smallBytes = snapshotBytes(small.sizeBytes, 9);
  const smallWriter = await storage.snapshots.begin(small);
  await smallWriter.write(smallBytes);
  filler = await fillDisk(mountPoint);
  await assert.rejects(smallWriter.finish(), (error) => isConclaveError(error, "CONCLAVE_DISK_FULL"));
  assert.equal(
    await temporaryBytes(),
    small.sizeBytes + overhead - 4,
    "the data and the description are kept",
  );
  await rm(filler);
  await smallWriter.finish();
  assert.deepEqual(storage.snapshots.latest(), small);
  await storage.close();

  // Both verify when the directory is opened again (description and CRC rewritten in place).
  const reopened = createFileStorage(dataDirectory);
  const recovered = await reopened.open();
  assert.deepEqual(recovered.snapshot, small);
  assert.deepEqual(reopened.snapshots.read(small, 0, small.sizeBytes), smallBytes);
  await reopened.close();
});

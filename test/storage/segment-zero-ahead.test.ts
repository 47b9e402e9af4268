/**
 * The active segment's space past its records: pre-sized as a hole (the file's length does not
 * change with each write), and written with zeros a stretch ahead of the records, so that the
 * next O_DSYNC writes land on blocks the file system already holds instead of allocating one
 * each (FileLogStore's zero-ahead). Read back, the zeros are the log's end as before.
 */
import assert from "node:assert/strict";
import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { FileLogStore } from "../../src/adapters/storage/file-log-store.ts";
import { entryRange } from "./storage-compliance.ts";
import { segmentRecords, temporaryDirectory } from "./storage-harnesses.ts";

const zeroAheadBytes = 64 * 1024;

/** A log of entries 1..count written in syncs of 10 with `options`; its one segment's path. */
async function writeLog(
  directory: string,
  count: number,
  options: ConstructorParameters<typeof FileLogStore>[1],
): Promise<string> {
  const log = new FileLogStore(directory, options);
  await log.open();
  for (let first = 1; first <= count; first += 10) {
    log.append(entryRange(first, Math.min(count, first + 9), 1));
    await log.sync();
  }
  await log.close();
  const names = await readdir(directory);
  assert.equal(names.length, 1, `one segment: ${names.join(", ")}`);
  return join(directory, names[0] as string);
}

/** Bytes the file system holds for the file (st_blocks is in 512-byte units). */
async function allocatedBytes(path: string): Promise<number> {
  return (await stat(path)).blocks * 512;
}

test("a write leaves zeros written ahead of the records, and the rest of the pre-sized length a hole", async () => {
  const directory = await temporaryDirectory();
  try {
    const segment = await writeLog(directory, 30, {});
    const { endBytes, offsets } = await segmentRecords(segment);
    assert.equal(offsets.length, 30);
    const allocated = await allocatedBytes(segment);
    assert.ok(
      allocated >= endBytes + zeroAheadBytes,
      `${allocated} bytes held for ${endBytes} of records: the next ${zeroAheadBytes} should be written zeros`,
    );
    const { size } = await stat(segment);
    assert.ok(allocated < size, `the pre-sized length (${size} bytes) is not all written (${allocated})`);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});

test("without zero-ahead the space past the records stays a hole (what the writes would have to fill)", async () => {
  const directory = await temporaryDirectory();
  try {
    const segment = await writeLog(directory, 30, { zeroAheadBytes: 0 });
    const { endBytes } = await segmentRecords(segment);
    const allocated = await allocatedBytes(segment);
    assert.ok(allocated < endBytes + zeroAheadBytes, `${allocated} bytes held for ${endBytes} of records`);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});

test("writes past the zeroed stretch zero the next one; reopened, the log reads to its last record", async () => {
  const directory = await temporaryDirectory();
  try {
    // ~1,500 entries of ~100 bytes of record: more than one stretch of zeros.
    const entries = entryRange(1, 1500, 1).map((entry) => ({ ...entry, data: new Uint8Array(100) }));
    const log = new FileLogStore(directory, {});
    await log.open();
    for (let first = 0; first < entries.length; first += 25) {
      log.append(entries.slice(first, first + 25));
      await log.sync();
    }
    await log.close();
    const [name] = await readdir(directory);
    const segment = join(directory, name as string);
    const { endBytes } = await segmentRecords(segment);
    assert.ok(endBytes > 2 * zeroAheadBytes, `${endBytes} bytes of records`);
    assert.ok((await allocatedBytes(segment)) >= endBytes, "no hole under the records");

    const reopened = new FileLogStore(directory, {});
    assert.deepEqual((await reopened.open()).entries, entries);
    reopened.append(entryRange(1501, 1501, 1));
    await reopened.sync();
    await reopened.close();
    const again = new FileLogStore(directory, {});
    const recovered = (await again.open()).entries;
    assert.equal(recovered.length, 1501);
    assert.deepEqual(recovered.at(-1), entryRange(1501, 1501, 1)[0]);
    await again.close();
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});

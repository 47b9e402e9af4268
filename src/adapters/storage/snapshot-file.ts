/**
 * One snapshot file, `<term>-<index>.snap` (little-endian). Version 2, written since 2026-12:
 *
 * ```
 * data (meta.sizeBytes) | meta (msgpack) | metaBytes u32 | version u32 = 2 | magic "CNCLSNAP" | crc32 u32
 * ```
 *
 * The description trails the data so that a file that already holds the data (the state
 * machine's copy of its database) becomes a snapshot by appending to it and renaming it, with
 * no copy: a snapshot of a 200 MB database used to be written twice and read twice, and its
 * 1 MiB chunk buffers were the ArrayBuffer peaks of the memory benchmark (see
 * docs/benchmarks.md). Version 1 files, read still, put the same parts the other way round:
 * `magic | version u32 = 1 | metaBytes u32 | meta | data | crc32 u32`.
 *
 * The trailing CRC covers every byte before it. A snapshot is written to `<name>.tmp`, checked by
 * reading it back (a file taken over is read once for its CRC, then only its description is read
 * back), fsynced, renamed into place and the directory fsynced: after a crash a
 * `.snap` file is always complete, and `.tmp` leftovers are deleted at open.
 */
import { constants } from "node:fs";
import { copyFile, type FileHandle, open, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { assert } from "../../lib/assert.ts";
import { ConclaveError } from "../../lib/errors.ts";
import type { SnapshotWriter } from "../../ports/storage.ts";
import type { SnapshotMeta } from "../../raft/types.ts";
import { corruptStorageError, type DiskGuard } from "./disk-guard.ts";
import { decodeSnapshotMeta, encodeSnapshotMeta } from "./entry-codec.ts";

const SNAPSHOT_MAGIC = Buffer.from("CNCLSNAP", "latin1");
/** Version 1: the description first (read only). */
const HEADER_FIRST_VERSION = 1;
/** Version 2: the description after the data (written). */
const TRAILER_VERSION = 2;
const V1_FIXED_HEADER_BYTES = 16;
/** metaBytes u32, version u32, magic: what follows the meta in version 2, before the CRC. */
const V2_FIXED_TRAILER_BYTES = 16;
const CRC_BYTES = 4;
const META_BYTES_MAX = 64 * 1024;
const VERIFY_CHUNK_BYTES = 1024 * 1024;

/** `<term>-<index>.snap`, or `<term>-<index>.mark.snap` for a mark (it may share a copy's index and term). */
export function snapshotFileName(meta: Pick<SnapshotMeta, "term" | "index" | "inStateMachine">): string {
  return `${meta.term}-${meta.index}${meta.inStateMachine === true ? ".mark" : ""}.snap`;
}

/** Parses a {@link snapshotFileName}; null for other names. */
export function parseSnapshotFileName(name: string): { term: number; index: number; mark: boolean } | null {
  const match = /^(\d+)-(\d+)(\.mark)?\.snap$/.exec(name);
  if (match?.[1] === undefined || match[2] === undefined) return null;
  return { term: Number(match[1]), index: Number(match[2]), mark: match[3] !== undefined };
}

/** What follows the data in a version 2 file, up to (not including) the CRC. */
function encodeSnapshotDescription(meta: SnapshotMeta): Buffer {
  const encodedMeta = encodeSnapshotMeta(meta);
  const description = Buffer.alloc(encodedMeta.length + V2_FIXED_TRAILER_BYTES);
  encodedMeta.copy(description, 0);
  description.writeUInt32LE(encodedMeta.length, encodedMeta.length);
  description.writeUInt32LE(TRAILER_VERSION, encodedMeta.length + 4);
  SNAPSHOT_MAGIC.copy(description, encodedMeta.length + 8);
  return description;
}

/** A verified snapshot file: its metadata and where its data starts. */
export interface SnapshotFile {
  readonly meta: SnapshotMeta;
  readonly path: string;
  readonly dataOffsetBytes: number;
}

/** Reads up to `length` bytes at `position` into `buffer` (from its start); returns that view. */
async function readInto(
  handle: FileHandle,
  buffer: Buffer,
  length: number,
  position: number,
): Promise<Buffer> {
  assert(length <= buffer.length, "read longer than its buffer");
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buffer.subarray(0, done);
}

/** CRC-32 of the file's first `length` bytes, read through one reused buffer. */
async function crcOfPrefix(handle: FileHandle, length: number, buffer: Buffer): Promise<number> {
  let crc = 0;
  for (let position = 0; position < length; position += buffer.length) {
    const chunk = await readInto(handle, buffer, Math.min(buffer.length, length - position), position);
    if (chunk.length === 0) break;
    crc = crc32(chunk, crc);
  }
  return crc;
}

/**
 * Finds the description of either version, without reading the data. Version 2 is recognised by
 * its trailing magic (data could begin with anything, a version 1 file never ends with it).
 */
async function readSnapshotLayout(
  handle: FileHandle,
  path: string,
  size: number,
  buffer: Buffer,
): Promise<{ meta: SnapshotMeta; dataOffsetBytes: number }> {
  const tailBytes = V2_FIXED_TRAILER_BYTES + CRC_BYTES;
  if (size >= tailBytes) {
    const tail = await readInto(handle, buffer, tailBytes, size - tailBytes);
    if (tail.subarray(8, 16).equals(SNAPSHOT_MAGIC)) {
      const version = tail.readUInt32LE(4);
      if (version !== TRAILER_VERSION) {
        throw corruptStorageError(
          path,
          size - tailBytes + 4,
          `snapshot format version ${version} is not supported`,
        );
      }
      const metaBytes = tail.readUInt32LE(0);
      const metaOffset = size - tailBytes - metaBytes;
      if (metaBytes > META_BYTES_MAX || metaOffset < 0) {
        throw corruptStorageError(
          path,
          size - tailBytes,
          `the snapshot metadata length ${metaBytes} is impossible`,
        );
      }
      const meta = decodeSnapshotMeta(await readInto(handle, buffer, metaBytes, metaOffset));
      if (meta === null) throw corruptStorageError(path, metaOffset, "the snapshot metadata cannot be read");
      if (meta.sizeBytes !== metaOffset) {
        throw corruptStorageError(
          path,
          metaOffset,
          `the data is ${metaOffset} bytes, ${meta.sizeBytes} expected`,
        );
      }
      return { meta, dataOffsetBytes: 0 };
    }
  }
  const fixed = await readInto(handle, buffer, V1_FIXED_HEADER_BYTES, 0);
  if (fixed.length < V1_FIXED_HEADER_BYTES || !fixed.subarray(0, 8).equals(SNAPSHOT_MAGIC)) {
    throw corruptStorageError(path, 0, "this is not a complete Conclave snapshot (bad magic)");
  }
  if (fixed.readUInt32LE(8) !== HEADER_FIRST_VERSION) {
    throw corruptStorageError(path, 8, `snapshot format version ${fixed.readUInt32LE(8)} is not supported`);
  }
  const metaBytes = fixed.readUInt32LE(12);
  const meta = decodeSnapshotMeta(
    await readInto(handle, buffer, Math.min(metaBytes, META_BYTES_MAX), V1_FIXED_HEADER_BYTES),
  );
  if (meta === null)
    throw corruptStorageError(path, V1_FIXED_HEADER_BYTES, "the snapshot metadata cannot be read");
  const dataOffsetBytes = V1_FIXED_HEADER_BYTES + metaBytes;
  const expectedSize = dataOffsetBytes + meta.sizeBytes + CRC_BYTES;
  if (size !== expectedSize) {
    throw corruptStorageError(
      path,
      Math.min(size, expectedSize),
      `the file is ${size} bytes, ${expectedSize} expected`,
    );
  }
  return { meta, dataOffsetBytes };
}

/**
 * Checks a snapshot file (description, sizes and, with `checkData`, the CRC over every byte);
 * throws CONCLAVE_STORAGE_CORRUPT.
 */
export async function verifySnapshotFile(path: string, checkData = true): Promise<SnapshotFile> {
  const handle = await open(path, "r");
  try {
    const { size } = await handle.stat();
    const buffer = Buffer.allocUnsafe(checkData ? VERIFY_CHUNK_BYTES : META_BYTES_MAX);
    const { meta, dataOffsetBytes } = await readSnapshotLayout(handle, path, size, buffer);
    if (checkData) {
      const crc = await crcOfPrefix(handle, size - CRC_BYTES, buffer);
      const trailer = await readInto(handle, buffer, CRC_BYTES, size - CRC_BYTES);
      if (trailer.readUInt32LE(0) !== crc) {
        throw corruptStorageError(
          path,
          size - CRC_BYTES,
          "the snapshot checksum does not match its contents",
        );
      }
    }
    return { meta, path, dataOffsetBytes };
  } finally {
    await handle.close();
  }
}

/**
 * Writes one snapshot, from chunks (`start`, `write`…) or from a file that already holds its data
 * (`startFromFile`), then `finish`; `onFinished` publishes it once it is durable under its final
 * name.
 */
export class FileSnapshotWriter implements SnapshotWriter {
  readonly #meta: SnapshotMeta;
  readonly #directory: string;
  readonly #guard: DiskGuard;
  readonly #onFinished: (file: SnapshotFile) => Promise<void>;
  readonly #onAborted: () => void;
  readonly #temporaryPath: string;
  #handle: FileHandle | null = null;
  #positionBytes = 0;
  #dataBytes = 0;
  #crc = 0;
  /** The CRC of the data alone: where `finish` starts again after a full disk interrupted it. */
  #dataCrc = 0;
  /** Whether the data went through this writer (then `finish` reads it all back). */
  #dataWritten = true;
  #state: "open" | "finished" | "aborted" = "open";

  constructor(
    meta: SnapshotMeta,
    directory: string,
    guard: DiskGuard,
    onFinished: (file: SnapshotFile) => Promise<void>,
    onAborted: () => void,
  ) {
    this.#meta = meta;
    this.#onAborted = onAborted;
    this.#directory = directory;
    this.#guard = guard;
    this.#onFinished = onFinished;
    this.#temporaryPath = join(directory, `${snapshotFileName(meta)}.tmp`);
  }

  /** Creates the temporary file; the data follows with `write`. */
  async start(): Promise<void> {
    this.#handle = await open(this.#temporaryPath, "w");
  }

  /**
   * Takes over `sourcePath`, which holds exactly the snapshot's data: it is moved to the
   * temporary file (copied by the kernel when it is on another file system) and its CRC is
   * computed by reading it once; `finish` appends the description. Nothing is left at
   * `sourcePath` afterwards, even on failure.
   */
  async startFromFile(sourcePath: string): Promise<void> {
    this.#dataWritten = false;
    try {
      await rename(sourcePath, this.#temporaryPath);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EXDEV") {
        await unlink(sourcePath).catch(() => undefined);
        throw this.#guard.fail(error, `moving ${sourcePath} to ${this.#temporaryPath}`);
      }
      try {
        await this.#guard.write(
          `copy of ${sourcePath}`,
          this.#meta.sizeBytes,
          () => copyFile(sourcePath, this.#temporaryPath, constants.COPYFILE_FICLONE),
          () => unlink(this.#temporaryPath).catch(() => undefined),
        );
      } finally {
        await unlink(sourcePath).catch(() => undefined);
      }
    }
    const handle = await open(this.#temporaryPath, "r+");
    this.#handle = handle;
    const { size } = await handle.stat();
    if (size !== this.#meta.sizeBytes) {
      await this.abort();
      throw this.#sizeError(size);
    }
    this.#crc = await crcOfPrefix(handle, size, Buffer.allocUnsafe(VERIFY_CHUNK_BYTES));
    this.#dataCrc = this.#crc;
    this.#dataBytes = size;
    this.#positionBytes = size;
  }

  async #append(bytes: Uint8Array): Promise<void> {
    const handle = this.#handle;
    assert(handle !== null && this.#state === "open", "snapshot writer is not open");
    await this.#guard.write(
      `write to ${this.#temporaryPath}`,
      bytes.length,
      async () => {
        let done = 0;
        while (done < bytes.length) {
          const { bytesWritten } = await handle.write(
            bytes,
            done,
            bytes.length - done,
            this.#positionBytes + done,
          );
          done += bytesWritten;
        }
      },
      // A full disk: cut the file back to before this write and stay open, so that the same
      // bytes can be written again once there is room (the runtime retries, as it does a sync).
      () => handle.truncate(this.#positionBytes),
    );
    this.#positionBytes += bytes.length;
    this.#crc = crc32(bytes, this.#crc);
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.#dataBytes + chunk.length > this.#meta.sizeBytes) {
      await this.abort();
      throw this.#sizeError(this.#dataBytes + chunk.length);
    }
    await this.#append(chunk);
    this.#dataBytes += chunk.length;
    this.#dataCrc = this.#crc;
  }

  #sizeError(bytes: number): ConclaveError {
    return new ConclaveError(
      "CONCLAVE_SNAPSHOT_SIZE_MISMATCH",
      `Snapshot ${snapshotFileName(this.#meta)} received ${bytes} bytes but its metadata says ` +
        `${this.#meta.sizeBytes}; the transfer was discarded and must restart from offset 0.`,
      { index: this.#meta.index, term: this.#meta.term, bytes, sizeBytes: this.#meta.sizeBytes },
    );
  }

  async finish(): Promise<void> {
    const handle = this.#handle;
    assert(handle !== null && this.#state === "open", "snapshot writer is not open");
    if (this.#dataBytes !== this.#meta.sizeBytes) {
      await this.abort();
      throw this.#sizeError(this.#dataBytes);
    }
    // From the end of the data every time: a finish that a full disk interrupted (after the
    // description, before the CRC) is called again and rewrites both in place.
    this.#positionBytes = this.#dataBytes;
    this.#crc = this.#dataCrc;
    await this.#append(encodeSnapshotDescription(this.#meta));
    const crc = Buffer.alloc(CRC_BYTES);
    crc.writeUInt32LE(this.#crc, 0);
    await this.#append(crc);
    await this.#guard.flush(handle, this.#temporaryPath);
    await handle.close();
    this.#handle = null;
    // Read back before publishing: catches a write path that changed the bytes. Data taken over
    // from a file was just read for its CRC, so only the description is read again.
    const verified = await verifySnapshotFile(this.#temporaryPath, this.#dataWritten);
    const finalPath = join(this.#directory, snapshotFileName(this.#meta));
    try {
      await rename(this.#temporaryPath, finalPath);
    } catch (error) {
      throw this.#guard.fail(error, `renaming ${this.#temporaryPath}`);
    }
    const directory = await open(this.#directory, "r");
    try {
      await this.#guard.flush(directory, this.#directory);
    } finally {
      await directory.close();
    }
    this.#state = "finished";
    await this.#onFinished({ ...verified, path: finalPath });
  }

  async abort(): Promise<void> {
    if (this.#state !== "open") return;
    this.#state = "aborted";
    this.#onAborted();
    await this.#handle?.close();
    this.#handle = null;
    await unlink(this.#temporaryPath).catch(() => undefined);
  }
}

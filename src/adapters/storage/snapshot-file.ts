/**
 * One snapshot file, `<term>-<index>.snap` (little-endian):
 *
 * ```
 * magic "CNCLSNAP" | version u32 | metaBytes u32 | meta (msgpack) | data (meta.sizeBytes) | crc32 u32
 * ```
 *
 * The trailing CRC covers every byte before it. A snapshot is written to `<name>.tmp`, checked by
 * reading it back, fsynced, renamed into place and the directory fsynced: after a crash a
 * `.snap` file is always complete, and `.tmp` leftovers are deleted at open.
 */
import { type FileHandle, open, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { assert } from "../../lib/assert.ts";
import { ConclaveError } from "../../lib/errors.ts";
import type { SnapshotWriter } from "../../ports/storage.ts";
import type { SnapshotMeta } from "../../raft/types.ts";
import { corruptStorageError, type DiskGuard } from "./disk-guard.ts";
import { decodeSnapshotMeta, encodeSnapshotMeta } from "./entry-codec.ts";

const SNAPSHOT_MAGIC = Buffer.from("CNCLSNAP", "latin1");
const SNAPSHOT_VERSION = 1;
const FIXED_HEADER_BYTES = 16;
const TRAILER_BYTES = 4;
const VERIFY_CHUNK_BYTES = 1024 * 1024;

export function snapshotFileName(meta: Pick<SnapshotMeta, "term" | "index">): string {
  return `${meta.term}-${meta.index}.snap`;
}

/** Parses `<term>-<index>.snap`; null for other names. */
export function parseSnapshotFileName(name: string): { term: number; index: number } | null {
  const match = /^(\d+)-(\d+)\.snap$/.exec(name);
  if (match?.[1] === undefined || match[2] === undefined) return null;
  return { term: Number(match[1]), index: Number(match[2]) };
}

export function encodeSnapshotHeader(meta: SnapshotMeta): Buffer {
  const encodedMeta = encodeSnapshotMeta(meta);
  const header = Buffer.alloc(FIXED_HEADER_BYTES + encodedMeta.length);
  SNAPSHOT_MAGIC.copy(header, 0);
  header.writeUInt32LE(SNAPSHOT_VERSION, 8);
  header.writeUInt32LE(encodedMeta.length, 12);
  encodedMeta.copy(header, FIXED_HEADER_BYTES);
  return header;
}

/** A verified snapshot file: its metadata and where its data starts. */
export interface SnapshotFile {
  readonly meta: SnapshotMeta;
  readonly path: string;
  readonly dataOffsetBytes: number;
}

async function readExactly(handle: FileHandle, length: number, position: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buffer.subarray(0, done);
}

/** Reads and checks a whole snapshot file (header, size, CRC); throws CONCLAVE_STORAGE_CORRUPT. */
export async function verifySnapshotFile(path: string): Promise<SnapshotFile> {
  const handle = await open(path, "r");
  try {
    const { size } = await handle.stat();
    const fixed = await readExactly(handle, FIXED_HEADER_BYTES, 0);
    if (fixed.length < FIXED_HEADER_BYTES || !fixed.subarray(0, 8).equals(SNAPSHOT_MAGIC)) {
      throw corruptStorageError(path, 0, "this is not a complete Conclave snapshot (bad magic)");
    }
    if (fixed.readUInt32LE(8) !== SNAPSHOT_VERSION) {
      throw corruptStorageError(path, 8, `snapshot format version ${fixed.readUInt32LE(8)} is not supported`);
    }
    const metaBytes = fixed.readUInt32LE(12);
    const meta = decodeSnapshotMeta(
      await readExactly(handle, Math.min(metaBytes, 64 * 1024), FIXED_HEADER_BYTES),
    );
    if (meta === null)
      throw corruptStorageError(path, FIXED_HEADER_BYTES, "the snapshot metadata cannot be read");
    const dataOffsetBytes = FIXED_HEADER_BYTES + metaBytes;
    const expectedSize = dataOffsetBytes + meta.sizeBytes + TRAILER_BYTES;
    if (size !== expectedSize) {
      throw corruptStorageError(
        path,
        Math.min(size, expectedSize),
        `the file is ${size} bytes, ${expectedSize} expected`,
      );
    }
    let crc = 0;
    for (let position = 0; position < size - TRAILER_BYTES; position += VERIFY_CHUNK_BYTES) {
      const length = Math.min(VERIFY_CHUNK_BYTES, size - TRAILER_BYTES - position);
      crc = crc32(await readExactly(handle, length, position), crc);
    }
    const trailer = await readExactly(handle, TRAILER_BYTES, size - TRAILER_BYTES);
    if (trailer.readUInt32LE(0) !== crc) {
      throw corruptStorageError(
        path,
        size - TRAILER_BYTES,
        "the snapshot checksum does not match its contents",
      );
    }
    return { meta, path, dataOffsetBytes };
  } finally {
    await handle.close();
  }
}

/** Writes one snapshot; `onFinished` publishes it once it is durable under its final name. */
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

  /** Creates the temporary file and writes the header. */
  async start(): Promise<void> {
    this.#handle = await open(this.#temporaryPath, "w");
    await this.#append(encodeSnapshotHeader(this.#meta));
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
      () => this.abort(),
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
    const trailer = Buffer.alloc(TRAILER_BYTES);
    trailer.writeUInt32LE(this.#crc, 0);
    await this.#append(trailer);
    await this.#guard.flush(handle, this.#temporaryPath);
    await handle.close();
    this.#handle = null;
    // Read back before publishing: catches a write path that changed the bytes.
    const verified = await verifySnapshotFile(this.#temporaryPath);
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

/**
 * The hard state in one preallocated file of two 512-byte slots that are written in turn, each
 * with a sequence number and a CRC. A sync overwrites the slot that does not hold the last
 * durable state with one O_DSYNC write (durable when it returns, like write + fdatasync); a torn write can only damage that slot, so the other one
 * still holds the last durable state. Open takes the valid slot with the higher sequence number.
 *
 * Slot layout (little-endian): magic "CNHS" | version u32 | sequence u64 | payloadBytes u32 |
 * payload (msgpack) | crc32 u32 of everything before it.
 *
 * Why slots and not write-temp + fsync + rename + fsync-directory: the hard state changes on
 * nearly every batch (the term, vote or commit index), and the slot write costs one synchronous
 * write to a file whose blocks are already allocated, run in parallel with the log's write; the rename costs two
 * fsyncs in series plus a rename (see the figures in test/storage). The price: silent bit rot
 * in the newest slot would fall back to the previous state instead of failing; disks report
 * unreadable sectors as EIO, which is fail-stop.
 */
import { constants } from "node:fs";
import { type FileHandle, mkdir, open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { assert } from "../../lib/assert.ts";
import type { StableStore } from "../../ports/storage.ts";
import type { HardState } from "../../raft/types.ts";
import { corruptStorageError, DiskGuard } from "./disk-guard.ts";
import type { DurableWrites } from "./durable-writes.ts";
import { decodeHardState, encodeHardState } from "./entry-codec.ts";
import { SerialQueue } from "./serial-queue.ts";

const SLOT_BYTES = 512;
const SLOT_COUNT = 2;
const SLOT_MAGIC = Buffer.from("CNHS", "latin1");
const SLOT_VERSION = 1;
const SLOT_FIXED_BYTES = 24;
/** Largest encoded hard state (bounds the node id in `vote`). */
export const HARD_STATE_BYTES_MAX = SLOT_BYTES - SLOT_FIXED_BYTES;
export const HARD_STATE_FILE_NAME = "hardstate";

function encodeSlot(sequence: number, hardState: HardState): Buffer {
  const payload = encodeHardState(hardState);
  assert(payload.length <= HARD_STATE_BYTES_MAX, () => `hard state of ${payload.length} bytes is too large`);
  const slot = Buffer.alloc(SLOT_BYTES);
  SLOT_MAGIC.copy(slot, 0);
  slot.writeUInt32LE(SLOT_VERSION, 4);
  slot.writeBigUInt64LE(BigInt(sequence), 8);
  slot.writeUInt32LE(payload.length, 16);
  payload.copy(slot, 20);
  slot.writeUInt32LE(crc32(slot.subarray(0, 20 + payload.length)), 20 + payload.length);
  return slot;
}

type SlotContent = { sequence: number; hardState: HardState } | "empty" | "invalid";

function decodeSlot(slot: Buffer): SlotContent {
  if (slot.every((byte) => byte === 0)) return "empty";
  if (slot.length < SLOT_FIXED_BYTES || !slot.subarray(0, 4).equals(SLOT_MAGIC)) return "invalid";
  const payloadBytes = slot.readUInt32LE(16);
  if (slot.readUInt32LE(4) !== SLOT_VERSION || payloadBytes > HARD_STATE_BYTES_MAX) return "invalid";
  const crcAt = 20 + payloadBytes;
  if (slot.readUInt32LE(crcAt) !== crc32(slot.subarray(0, crcAt))) return "invalid";
  const hardState = decodeHardState(slot.subarray(20, crcAt));
  if (hardState === null) return "invalid";
  return { sequence: Number(slot.readBigUInt64LE(8)), hardState };
}

function sameHardState(a: HardState | null, b: HardState): boolean {
  return a !== null && a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/** {@link StableStore} in `<directory>/hardstate`. */
export class FileStableStore implements StableStore {
  readonly directory: string;
  readonly #path: string;
  readonly #guard: DiskGuard;
  readonly #queue = new SerialQueue();
  #handle: FileHandle | null = null;
  #sequence = 0;
  #durable: HardState | null = null;
  #pending: HardState | null = null;

  /** `durableWrites`: counts the slot writes (GET /v1/metrics). */
  constructor(directory: string, durableWrites: DurableWrites | null = null) {
    this.directory = directory;
    this.#path = join(directory, HARD_STATE_FILE_NAME);
    this.#guard = new DiskGuard(directory, durableWrites);
  }

  async open(): Promise<HardState | null> {
    assert(this.#handle === null, "FileStableStore.open called twice");
    await mkdir(this.directory, { recursive: true });
    let bytes: Buffer;
    try {
      bytes = await readFile(this.#path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      await this.#create();
      bytes = Buffer.alloc(SLOT_BYTES * SLOT_COUNT);
    }
    const padded = Buffer.alloc(SLOT_BYTES * SLOT_COUNT);
    bytes.copy(padded, 0, 0, Math.min(bytes.length, padded.length));
    const slots = [decodeSlot(padded.subarray(0, SLOT_BYTES)), decodeSlot(padded.subarray(SLOT_BYTES))];
    const valid = slots.filter((slot) => typeof slot === "object");
    // One empty slot and one invalid: the very first write was torn (nothing was durable yet).
    if (valid.length === 0 && !slots.includes("empty")) {
      throw corruptStorageError(this.#path, 0, "neither hard-state slot has a valid checksum");
    }
    const newest = valid.sort((a, b) => b.sequence - a.sequence)[0];
    this.#sequence = newest?.sequence ?? 0;
    this.#durable = newest?.hardState ?? null;
    // O_DSYNC: a slot write is durable when it returns (one thread-pool trip, as the log's).
    this.#handle = await open(this.#path, constants.O_RDWR | constants.O_DSYNC);
    return this.#durable;
  }

  /** Creates the zeroed file atomically (temp + fsync + rename + fsync directory). */
  async #create(): Promise<void> {
    const temporaryPath = `${this.#path}.tmp`;
    const handle = await open(temporaryPath, "w");
    try {
      await this.#guard.write(
        `creating ${temporaryPath}`,
        SLOT_BYTES * SLOT_COUNT,
        async () => {
          await handle.write(Buffer.alloc(SLOT_BYTES * SLOT_COUNT), 0, SLOT_BYTES * SLOT_COUNT, 0);
        },
        async () => undefined,
      );
      await this.#guard.flush(handle, temporaryPath);
    } finally {
      await handle.close();
    }
    await rename(temporaryPath, this.#path);
    const directory = await open(this.directory, "r");
    try {
      await this.#guard.flush(directory, this.directory);
    } finally {
      await directory.close();
    }
  }

  setHardState(hardState: HardState): void {
    this.#guard.assertUsable();
    assert(this.#handle !== null, "FileStableStore.setHardState before open");
    this.#pending = sameHardState(this.#durable, hardState) ? null : hardState;
  }

  sync(): Promise<void> {
    this.#guard.assertUsable();
    return this.#queue.run(async () => {
      const pending = this.#pending;
      const handle = this.#handle;
      if (pending === null || handle === null) return;
      const sequence = this.#sequence + 1;
      const slot = encodeSlot(sequence, pending);
      const position = (sequence % SLOT_COUNT) * SLOT_BYTES;
      const startedMs = performance.now();
      await this.#guard.write(
        `write to ${this.#path}`,
        SLOT_BYTES,
        async () => {
          await handle.write(slot, 0, SLOT_BYTES, position);
        },
        // The slot written may be torn; the other one still holds the durable state.
        async () => undefined,
      );
      this.#guard.countDurable(SLOT_BYTES, startedMs);
      this.#sequence = sequence;
      this.#durable = pending;
      if (this.#pending === pending) this.#pending = null;
    });
  }

  async close(): Promise<void> {
    await this.#queue.run(async () => {
      await this.#handle?.close();
      this.#handle = null;
    });
  }
}

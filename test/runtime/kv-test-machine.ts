/**
 * (Test double: the runtime tests' small in-memory state machine; the node itself runs SQLite.)
 *
 * A replicated in-memory key-value store: the first {@link StateMachine}, so that nodes do real
 * work before the replicated SQLite exists. Commands are msgpack (`encodeKvCommand`); values are
 * bytes. A snapshot is the msgpack encoding of the sorted entries.
 *
 * @example
 * ```ts
 * const kv = new KvStateMachine();
 * await runtime.propose(encodeKvCommand({ op: "put", key: "a", value: new TextEncoder().encode("1") }));
 * await runtime.readIndex();
 * kv.read("a"); // Uint8Array [0x31]
 * ```
 */
import { pack, unpack } from "msgpackr";
import type { StateMachine, StateMachineSnapshot } from "../../src/ports/state-machine.ts";

/** Longest key, in UTF-8 bytes. */
export const kvKeyBytesMax = 1024;
/** Largest value. */
export const kvValueBytesMax = 1024 * 1024;
/** Snapshot chunk size. */
const snapshotChunkBytes = 1024 * 1024;

export type KvCommand =
  | { readonly op: "put"; readonly key: string; readonly value: Uint8Array }
  | { readonly op: "delete"; readonly key: string }
  | { readonly op: "get"; readonly key: string };

export type KvResult =
  | { readonly op: "put" }
  | { readonly op: "delete"; readonly existed: boolean }
  | { readonly op: "get"; readonly value: Uint8Array | null }
  /** A committed command that could not be applied (malformed): every member answers the same. */
  | { readonly op: "error"; readonly message: string };

/** Encodes a command for `RaftRuntime.propose`. */
export function encodeKvCommand(command: KvCommand): Uint8Array {
  return pack(command);
}

/** Checks a key: 1..kvKeyBytesMax UTF-8 bytes. Returns a problem, or null when fine. */
export function kvKeyProblem(key: string): string | null {
  const bytes = Buffer.byteLength(key, "utf8");
  if (bytes === 0) return "the key is empty";
  if (bytes > kvKeyBytesMax) return `the key is ${bytes} bytes; at most ${kvKeyBytesMax}`;
  return null;
}

function decodeCommand(data: Uint8Array): KvCommand | string {
  let value: unknown;
  try {
    value = unpack(data);
  } catch {
    return "not msgpack";
  }
  if (value === null || typeof value !== "object") return "not a command object";
  const command = value as Record<string, unknown>;
  if (typeof command.key !== "string") return "the key is not a string";
  const keyProblem = kvKeyProblem(command.key);
  if (keyProblem !== null) return keyProblem;
  switch (command.op) {
    case "put":
      if (!(command.value instanceof Uint8Array)) return "the value is not bytes";
      if (command.value.byteLength > kvValueBytesMax) return "the value is too large";
      return { op: "put", key: command.key, value: command.value };
    case "delete":
    case "get":
      return { op: command.op, key: command.key };
    default:
      return `unknown op ${JSON.stringify(command.op)}`;
  }
}

/** The in-memory key-value {@link StateMachine}. */
export class KvStateMachine implements StateMachine {
  #data = new Map<string, Uint8Array>();

  apply(data: Uint8Array): KvResult {
    const command = decodeCommand(data);
    if (typeof command === "string") return { op: "error", message: command };
    switch (command.op) {
      case "put":
        this.#data.set(command.key, new Uint8Array(command.value));
        return { op: "put" };
      case "delete":
        return { op: "delete", existed: this.#data.delete(command.key) };
      case "get":
        return { op: "get", value: this.#data.get(command.key) ?? null };
    }
  }

  /** The local value of `key` (linearizable only after `RaftRuntime.readIndex` resolved). */
  read(key: string): Uint8Array | null {
    return this.#data.get(key) ?? null;
  }

  get size(): number {
    return this.#data.size;
  }

  snapshot(): StateMachineSnapshot {
    const entries = [...this.#data].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    // Encoded now: later applies cannot change what this snapshot yields.
    const bytes: Uint8Array = pack(entries);
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (let offset = 0; offset < bytes.byteLength; offset += snapshotChunkBytes) {
        yield bytes.subarray(offset, offset + snapshotChunkBytes);
      }
    }
    return { sizeBytes: bytes.byteLength, chunks: chunks() };
  }

  async restore(chunks: AsyncIterable<Uint8Array>, sizeBytes: number): Promise<void> {
    const bytes = new Uint8Array(sizeBytes);
    let offset = 0;
    for await (const chunk of chunks) {
      if (offset + chunk.byteLength > sizeBytes) throw new Error("snapshot larger than announced");
      bytes.set(chunk, offset);
      offset += chunk.byteLength;
    }
    if (offset !== sizeBytes) throw new Error(`snapshot of ${offset} bytes, ${sizeBytes} announced`);
    const entries = unpack(bytes) as [string, Uint8Array][];
    this.#data = new Map(entries.map(([key, value]) => [key, new Uint8Array(value)]));
  }
}

/**
 * The scenario harness's state machine: a string → string map fed by committed `key=value`
 * commands. It also tracks the applied index, term and membership itself (from the entries it
 * applies), so the harness can describe a snapshot without reaching into the core's internals.
 */
import assert from "node:assert/strict";
import type { Entry, Membership, SnapshotMeta } from "../../src/raft/index.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The command a test proposes: `key=value` as bytes. */
export function encodeCommand(key: string, value: string): Uint8Array {
  return encoder.encode(`${key}=${value}`);
}

/** A one-word description of an entry, used to check that every node applies the same one at an index. */
export function describeEntry(entry: Entry): string {
  if (entry.kind === "command") return `${entry.term}:${decoder.decode(entry.data)}`;
  if (entry.kind === "config") return `${entry.term}:config ${JSON.stringify(entry.membership)}`;
  return `${entry.term}:noop`;
}

export class KvStore {
  readonly data = new Map<string, string>();
  appliedIndex = 0;
  appliedTerm = 0;
  membership: Membership = { voters: [], learners: [] };

  apply(entry: Entry): void {
    assert.equal(entry.index, this.appliedIndex + 1, "entries are applied in order, without gaps");
    this.appliedIndex = entry.index;
    this.appliedTerm = entry.term;
    if (entry.kind === "config") this.membership = entry.membership;
    if (entry.kind !== "command") return;
    const text = decoder.decode(entry.data);
    const separator = text.indexOf("=");
    this.data.set(text.slice(0, separator), text.slice(separator + 1));
  }

  /** The state as snapshot bytes and the meta describing it (taken at the applied index). */
  snapshot(): { meta: SnapshotMeta; bytes: Uint8Array } {
    const bytes = encoder.encode(JSON.stringify([...this.data].sort()));
    const meta: SnapshotMeta = {
      index: this.appliedIndex,
      term: this.appliedTerm,
      membership: this.membership,
      sizeBytes: bytes.byteLength,
    };
    return { meta, bytes };
  }

  restore(meta: SnapshotMeta, bytes: Uint8Array): void {
    assert.equal(bytes.byteLength, meta.sizeBytes, "snapshot bytes match the meta's size");
    this.data.clear();
    for (const [key, value] of JSON.parse(decoder.decode(bytes)) as [string, string][]) {
      this.data.set(key, value);
    }
    this.appliedIndex = meta.index;
    this.appliedTerm = meta.term;
    this.membership = meta.membership;
  }

  /** The map as a plain object with sorted keys, for deepEqual. */
  toObject(): Record<string, string> {
    return Object.fromEntries([...this.data].sort());
  }
}

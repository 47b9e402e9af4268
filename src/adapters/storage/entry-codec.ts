/**
 * msgpackr encoding of log entries and hard states, in records mode with a fixed table of
 * shared structures. The table is part of the on-disk format (version 1): never reorder it;
 * a new structure goes at the end together with a format version bump. An object whose shape is
 * not in the table is still encoded (with its structure inline), so decoding never depends on
 * state outside the record itself.
 */
import { Packr } from "msgpackr";
import type { Entry, HardState, Membership, SnapshotMeta } from "../../raft/types.ts";

function sharedStructures(): string[][] {
  return [
    ["kind", "index", "term", "data"],
    ["kind", "index", "term", "membership"],
    ["kind", "index", "term"],
    ["voters", "learners"],
    ["term", "vote", "commit"],
    ["index", "term", "membership", "sizeBytes"],
    // Added with snapshot marks; appended so that the structures above keep their ids.
    ["index", "term", "membership", "sizeBytes", "inStateMachine"],
  ];
}

function newPackr(): Packr {
  const structures = sharedStructures();
  // maxSharedStructures = the table's length: the encoder never adds a structure of its own,
  // which a later process (with a fresh table) could not decode.
  return new Packr({
    useRecords: true,
    structures,
    maxSharedStructures: structures.length,
    copyBuffers: true,
  });
}

const packr = newPackr();

/** Encodes an entry with a fixed key order (so it always matches its shared structure). */
export function encodeEntry(entry: Entry): Buffer {
  let normalized: object;
  switch (entry.kind) {
    case "command":
      normalized = { kind: entry.kind, index: entry.index, term: entry.term, data: entry.data };
      break;
    case "config":
      normalized = {
        kind: entry.kind,
        index: entry.index,
        term: entry.term,
        membership: { voters: entry.membership.voters, learners: entry.membership.learners },
      };
      break;
    case "noop":
      normalized = { kind: entry.kind, index: entry.index, term: entry.term };
      break;
  }
  // pack() returns a view into a buffer it reuses: copy before the next call.
  return Buffer.from(packr.pack(normalized));
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === "string");
}

function decodeMembership(value: unknown): Membership | null {
  if (typeof value !== "object" || value === null) return null;
  const { voters, learners } = value as Record<string, unknown>;
  if (!isStringArray(voters) || !isStringArray(learners)) return null;
  return { voters, learners };
}

/** Decodes an entry whose checksum already matched; null when the bytes are not an entry. */
export function decodeEntry(body: Uint8Array): Entry | null {
  let value: unknown;
  try {
    value = packr.unpack(body);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const { kind, index, term, data, membership } = value as Record<string, unknown>;
  if (!isCount(index) || !isCount(term)) return null;
  if (kind === "noop") return { kind, index, term };
  if (kind === "command" && data instanceof Uint8Array) {
    // msgpackr hands back a Buffer; callers compare plain Uint8Arrays.
    return { kind, index, term, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  }
  if (kind === "config") {
    const decoded = decodeMembership(membership);
    if (decoded !== null) return { kind, index, term, membership: decoded };
  }
  return null;
}

/** Encodes a hard state (fixed key order). */
export function encodeHardState(hardState: HardState): Buffer {
  return Buffer.from(packr.pack({ term: hardState.term, vote: hardState.vote, commit: hardState.commit }));
}

/** Decodes a hard state whose checksum already matched; null when the bytes are not one. */
export function decodeHardState(body: Uint8Array): HardState | null {
  let value: unknown;
  try {
    value = packr.unpack(body);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const { term, vote, commit } = value as Record<string, unknown>;
  if (!isCount(term) || !isCount(commit)) return null;
  if (vote !== null && typeof vote !== "string") return null;
  return { term, vote, commit };
}

/** Encodes snapshot metadata (fixed key order). */
export function encodeSnapshotMeta(meta: SnapshotMeta): Buffer {
  const fields = {
    index: meta.index,
    term: meta.term,
    membership: { voters: meta.membership.voters, learners: meta.membership.learners },
    sizeBytes: meta.sizeBytes,
  };
  return Buffer.from(packr.pack(meta.inStateMachine === true ? { ...fields, inStateMachine: true } : fields));
}

/** Decodes snapshot metadata whose checksum already matched; null when the bytes are not one. */
export function decodeSnapshotMeta(body: Uint8Array): SnapshotMeta | null {
  let value: unknown;
  try {
    value = packr.unpack(body);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const { index, term, membership, sizeBytes, inStateMachine } = value as Record<string, unknown>;
  const decoded = decodeMembership(membership);
  if (!isCount(index) || !isCount(term) || !isCount(sizeBytes) || decoded === null) return null;
  if (inStateMachine === undefined) return { index, term, membership: decoded, sizeBytes };
  if (inStateMachine !== true || sizeBytes !== 0) return null;
  return { index, term, membership: decoded, sizeBytes, inStateMachine };
}

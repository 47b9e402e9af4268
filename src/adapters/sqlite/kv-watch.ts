/**
 * The KV change history behind watches: every put and delete is recorded with its revision in
 * `_conclave_kv_history`, kept for at least the last `historyRevisionsMax` revisions (compacted
 * in the same transaction, so every member holds the same history). Compaction runs once per
 * 1/64 of that window rather than at every revision: one DELETE and one UPDATE per put were ~2 %
 * of a member's busy time at put ×64 (profile, session 18); now a window of 10,000 revisions is
 * compacted 156 revisions at a time, and up to 155 more revisions stay watchable. A watcher that fell behind reads
 * `changesSince(revision)`; live changes reach in-process listeners after each commit.
 *
 * @example
 * ```ts
 * const stop = machine.kv.watches.listen((changes) => stream.write(changes));
 * machine.kv.watches.changesSince(41, "config/", 100); // { ok: true, changes: [...] }
 * ```
 */
import type { DatabaseSync } from "node:sqlite";
import { ConclaveError } from "../../lib/errors.ts";
import type { ChangesSince } from "../../ports/database.ts";
import { keyBytes, prefixEnd } from "./kv-schema.ts";
import type { KvChange } from "./kv-store.ts";
import { StatementCache } from "./statement-cache.ts";

/** Most changes one `changesSince` returns. */
export const changesPerReadMax = 10_000;

/** Compaction runs once this share of the history window has passed (at least every revision). */
const compactionStepsPerWindow = 64;

/** Most in-process listeners at once. */
export const watchListenersMax = 1000;

/** Changes after a revision, or why they are no longer available (the port's shape). */
export type ChangesSinceResult = ChangesSince;

/** Called after each committed entry that changed keys, in log order. */
export type KvChangeListener = (changes: readonly KvChange[]) => void;

interface HistoryRow {
  revision: number;
  key: Uint8Array;
  type: "put" | "delete";
  value: Uint8Array | null;
}

/** The bounded change history and its listeners. */
export class KvWatchHistory {
  readonly #historyRevisionsMax: number;
  /** Revisions compaction waits for before it runs (deterministic: the same on every member). */
  readonly #compactionStep: number;
  readonly #listeners = new Set<KvChangeListener>();
  readonly #statements: StatementCache;
  /** The compacted revision in `_conclave_kv_meta`, once read (null: read it). */
  #compacted: number | null = null;

  /** `historyRevisionsMax` must be the same on every member (it decides what is deleted). */
  constructor(db: DatabaseSync, historyRevisionsMax: number) {
    this.#historyRevisionsMax = historyRevisionsMax;
    this.#compactionStep = Math.max(1, Math.floor(historyRevisionsMax / compactionStepsPerWindow));
    this.#statements = new StatementCache(db);
  }

  /** Switches to a reopened connection (after a restore). */
  attach(db: DatabaseSync): void {
    this.#statements.attach(db);
    this.#compacted = null;
  }

  /** Records one change; `seq` orders the changes of one revision. The new row's rowid. */
  record(change: KvChange, seq: number): number {
    const { lastInsertRowid } = this.#statements
      .get("INSERT INTO _conclave_kv_history (revision, seq, key, type, value) VALUES (?, ?, ?, ?, ?)")
      .run(change.revision, seq, keyBytes(change.key), change.type, change.value);
    return Number(lastInsertRowid);
  }

  /**
   * A key no longer points at history row `row` (written at `revision`): deletes it when
   * compaction has passed it. A row above the compacted revision stays for watchers; compaction
   * deletes it later, as no key points at it any more.
   */
  release(row: number, revision: number): void {
    if (revision <= this.#compactedRevision())
      this.#statements.get("DELETE FROM _conclave_kv_history WHERE rowid = ?").run(row);
  }

  /**
   * Drops history older than the last `historyRevisionsMax` revisions (inside the entry's
   * transaction) once a compaction step of them has passed, except the rows keys still point at
   * (they hold the keys' values). Only the revisions newly compacted are looked at: the rows kept
   * below them are deleted by `release`.
   */
  compact(revision: number): void {
    const compactTo = revision - this.#historyRevisionsMax;
    const compacted = this.#compactedRevision();
    if (compactTo - compacted < this.#compactionStep) return;
    this.#statements
      .get(
        `DELETE FROM _conclave_kv_history AS h WHERE h.revision > ? AND h.revision <= ?
         AND NOT EXISTS (SELECT 1 FROM _conclave_kv AS k WHERE k.key = h.key AND k.value_row = h.rowid)`,
      )
      .run(compacted, compactTo);
    this.#statements.get("UPDATE _conclave_kv_meta SET compacted_revision = ? WHERE id = 0").run(compactTo);
    this.#compacted = compactTo;
  }

  /** Cached after the first read (checked on every put): only compact() changes it. */
  #compactedRevision(): number {
    this.#compacted ??= (
      this.#statements.get("SELECT compacted_revision FROM _conclave_kv_meta WHERE id = 0").get() as {
        compacted_revision: number;
      }
    ).compacted_revision;
    return this.#compacted;
  }

  /**
   * Changes with a revision greater than `revision` under `prefix`, oldest first, at most `limit`.
   * Fails with `compacted` (naming the oldest revision still available) when some were dropped.
   */
  changesSince(revision: number, prefix = "", limit = changesPerReadMax): ChangesSinceResult {
    const compacted = this.#compactedRevision();
    if (revision < compacted) {
      return {
        ok: false,
        error: {
          code: "compacted",
          message: `revision ${revision} is compacted; the oldest revision still available is ${compacted + 1}`,
          oldestRevision: compacted + 1,
        },
      };
    }
    const start = keyBytes(prefix);
    const end = prefixEnd(start) ?? Buffer.alloc(0);
    const rows = this.#statements
      .get(
        `SELECT revision, key, type, value FROM _conclave_kv_history
         WHERE revision > ? AND key >= ? AND (length(?) = 0 OR key < ?)
         ORDER BY revision, seq LIMIT ?`,
      )
      .all(
        revision,
        start,
        end,
        end,
        Math.max(0, Math.min(limit, changesPerReadMax)),
      ) as unknown as HistoryRow[];
    const changes = rows.map((row) => ({
      revision: row.revision,
      key: Buffer.from(row.key).toString("utf8"),
      type: row.type,
      value: row.value === null ? null : new Uint8Array(row.value),
    }));
    return { ok: true, changes };
  }

  /** Adds a listener; returns the function that removes it. Throws when `watchListenersMax` are registered. */
  listen(listener: KvChangeListener): () => void {
    if (this.#listeners.size >= watchListenersMax) {
      throw new ConclaveError(
        "CONCLAVE_WATCH_LIMIT",
        `there are already watchListenersMax (${watchListenersMax}) watch listeners; close some first`,
      );
    }
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Tells every listener (a throwing listener is ignored: it must not stop the apply loop). */
  notify(changes: readonly KvChange[]): void {
    if (changes.length === 0) return;
    for (const listener of this.#listeners) {
      try {
        listener(changes);
      } catch {
        // A listener's bug is its own; the replicated state is already committed.
      }
    }
  }
}

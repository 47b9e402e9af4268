/**
 * `kv.watch(prefix)` as an async iterator: first the changes since `fromRevision` from this
 * member's history (whole revisions at a time), then live changes as this member applies them.
 * It ends when the caller's `signal` aborts, when the node stops, or when the caller breaks out
 * of the loop; the listener is always removed. A watcher more than `liveChangesMax` changes
 * behind throws `CONCLAVE_WATCH_SLOW` (resume from `details.revision + 1`); a compacted start
 * throws `CONCLAVE_WATCH_COMPACTED` (`details.oldestRevision`).
 *
 * @example
 * ```ts
 * for await (const change of watchChanges(database, "jobs/", { signal })) {
 *   console.log(change.type, change.key, change.revision);
 * }
 * ```
 */
import { ConclaveError } from "../lib/errors.ts";
import type { Database, KvChange } from "../ports/database.ts";

/** Changes read from the history per step of a catch-up. */
const catchUpPageChangesMax = 1000;
/** Live changes buffered for a slow consumer before the watch fails. */
export const liveChangesMax = 10_000;

export interface WatchOptions {
  /** First revision to deliver (default: only changes after now). */
  readonly fromRevision?: number;
  readonly signal?: AbortSignal;
}

/** Changes under `prefix`; see the module comment. `stopped` aborts when the node stops. */
export async function* watchChanges(
  database: Pick<Database, "changesSince" | "listen" | "kvRevision">,
  prefix: string,
  options: WatchOptions & { readonly stopped?: AbortSignal },
): AsyncGenerator<KvChange, void, undefined> {
  let cursor =
    options.fromRevision === undefined || options.fromRevision === 0
      ? database.kvRevision()
      : options.fromRevision - 1;
  let live: KvChange[] = [];
  let overflowed = false;
  let wake: (() => void) | null = null;
  const signals = [options.signal, options.stopped].filter((s): s is AbortSignal => s !== undefined);
  const ended = (): boolean => signals.some((signal) => signal.aborted);
  const onAbort = (): void => wake?.();
  for (const signal of signals) signal.addEventListener("abort", onAbort);
  const unlisten = database.listen((changes) => {
    for (const change of changes) if (change.key.startsWith(prefix)) live.push(change);
    if (live.length > liveChangesMax) overflowed = true;
    if (live.length > 0) wake?.();
  });
  try {
    for (;;) {
      if (ended()) return;
      const page = database.changesSince(cursor, prefix, catchUpPageChangesMax);
      if (!page.ok) {
        throw new ConclaveError("CONCLAVE_WATCH_COMPACTED", page.error.message, {
          oldestRevision: page.error.oldestRevision,
        });
      }
      let changes = page.changes;
      const full = changes.length >= catchUpPageChangesMax;
      if (full) {
        // The page may end inside a revision: keep whole revisions (the rest comes next page).
        const lastRevision = changes[changes.length - 1]?.revision;
        const whole = changes.filter((change) => change.revision !== lastRevision);
        if (whole.length > 0) changes = whole;
      }
      for (const change of changes) {
        cursor = change.revision;
        yield change;
      }
      if (!full) break;
    }
    for (;;) {
      if (ended()) return;
      if (overflowed) {
        throw new ConclaveError(
          "CONCLAVE_WATCH_SLOW",
          `this watch fell more than ${liveChangesMax} changes behind; resume from revision ${cursor + 1}`,
          { revision: cursor },
        );
      }
      const fresh = live.filter((change) => change.revision > cursor);
      live = [];
      for (const change of fresh) {
        cursor = change.revision;
        yield change;
      }
      if (fresh.length === 0 && live.length === 0) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = null;
      }
    }
  } finally {
    unlisten();
    for (const signal of signals) signal.removeEventListener("abort", onAbort);
  }
}

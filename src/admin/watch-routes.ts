/**
 * `GET /v1/watch?prefix=…&fromRevision=…`: KV changes as newline-delimited JSON, one change per
 * line (`{ revision, key, type, value }`, value base64 or null), first the history from
 * `fromRevision` (default: only changes after now), then live changes, until the client
 * disconnects. A line `{ "heartbeat": true, "revision": N }` comes every `heartbeatIntervalMs`
 * without changes. A start revision that was compacted is a 410 naming `oldestRevision`. A
 * client that reads too slowly (more than `liveChangesMax` changes waiting) gets a last line
 * `{ error, code: "CONCLAVE_WATCH_SLOW", revision }` and the stream ends: resume from
 * `revision + 1`. Watches read this member's copy (any member serves them).
 */
import type { KvChange } from "../ports/database.ts";
import type { AdminContext, RouteModule } from "./admin-context.ts";
import { HttpFailure, orHttpFailure } from "./http-failure.ts";
import { changeToJson } from "./json-values.ts";
import { integerParam } from "./request-body.ts";
import { honoRequest } from "./route-request.ts";

/** Changes read from the history per step of a catch-up. */
const catchUpPageChangesMax = 1000;
/** Live changes buffered for a slow client before its stream is ended. */
export const liveChangesMax = 10_000;
/** Longest silence on a watch stream. */
export const heartbeatIntervalMs = 10_000;

const encoder = new TextEncoder();
const line = (value: unknown): Uint8Array => encoder.encode(`${JSON.stringify(value)}\n`);

/** One watch: catch-up from the history, then live changes; see the module comment. */
class Watch {
  readonly #context: AdminContext;
  readonly #prefix: string;
  #cursor: number;
  #caughtUp = false;
  #live: KvChange[] = [];
  #overflowed = false;
  #wake: (() => void) | null = null;
  #unlisten: (() => void) | null = null;

  constructor(context: AdminContext, prefix: string, cursor: number) {
    this.#context = context;
    this.#prefix = prefix;
    this.#cursor = cursor;
  }

  /** Registers the listener and checks the start revision is still kept; throws 410 if not. */
  open(): void {
    const { database } = this.#context;
    const first = database.changesSince(this.#cursor, this.#prefix, 1);
    if (!first.ok) {
      throw new HttpFailure(410, "CONCLAVE_WATCH_COMPACTED", first.error.message, {
        oldestRevision: first.error.oldestRevision,
      });
    }
    this.#unlisten = database.listen((changes) => this.#onChanges(changes));
  }

  #onChanges(changes: readonly KvChange[]): void {
    for (const change of changes) {
      if (change.key.startsWith(this.#prefix)) this.#live.push(change);
    }
    if (this.#live.length > liveChangesMax) this.#overflowed = true;
    if (this.#live.length > 0) this.#wake?.();
  }

  close(): void {
    this.#unlisten?.();
    this.#unlisten = null;
    this.#wake?.();
  }

  /** The next lines to send, or null when the stream ends. Waits for changes when caught up. */
  async next(): Promise<Uint8Array[] | null> {
    if (this.#unlisten === null) return null;
    if (this.#overflowed) {
      this.close();
      const message = `this watch fell more than ${liveChangesMax} changes behind; resume from revision ${this.#cursor + 1}`;
      return [line({ error: message, code: "CONCLAVE_WATCH_SLOW", revision: this.#cursor })];
    }
    if (!this.#caughtUp) return this.#catchUp();
    const fresh = this.#live.filter((change) => change.revision > this.#cursor);
    this.#live = [];
    if (fresh.length > 0) return this.#emit(fresh);
    const timedOut = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(true), heartbeatIntervalMs);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = null;
        resolve(false);
      };
    });
    this.#wake = null;
    if (timedOut && this.#unlisten !== null) {
      return [line({ heartbeat: true, revision: this.#context.database.kvRevision() })];
    }
    return [];
  }

  #catchUp(): Uint8Array[] {
    const page = this.#context.database.changesSince(this.#cursor, this.#prefix, catchUpPageChangesMax);
    if (!page.ok) {
      this.close();
      return [
        line({
          error: page.error.message,
          code: "CONCLAVE_WATCH_COMPACTED",
          oldestRevision: page.error.oldestRevision,
        }),
      ];
    }
    let changes = page.changes;
    if (changes.length < catchUpPageChangesMax) this.#caughtUp = true;
    else {
      // The page may end inside a revision: keep whole revisions only (the rest comes next page).
      const lastRevision = changes[changes.length - 1]?.revision;
      const whole = changes.filter((change) => change.revision !== lastRevision);
      if (whole.length > 0) changes = whole;
    }
    return this.#emit(changes);
  }

  #emit(changes: readonly KvChange[]): Uint8Array[] {
    const last = changes[changes.length - 1];
    if (last !== undefined) this.#cursor = last.revision;
    return changes.map((change) => line(changeToJson(change)));
  }
}

export const registerWatchRoutes: RouteModule = (app, context) => {
  app.get("/v1/watch", async (c) => {
    const prefix = c.req.query("prefix") ?? "";
    const fromRevision = integerParam(honoRequest(c), "fromRevision", null);
    const cursor =
      fromRevision === null || fromRevision === 0 ? context.database.kvRevision() : fromRevision - 1;
    const watch = new Watch(context, prefix, cursor);
    await orHttpFailure(context, () => watch.open());
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        for (;;) {
          const lines = await watch.next();
          if (lines === null) {
            controller.close();
            return;
          }
          for (const chunk of lines) controller.enqueue(chunk);
          if (lines.length > 0) return;
        }
      },
      cancel() {
        watch.close();
      },
    });
    return c.body(body, 200, { "content-type": "application/x-ndjson", "cache-control": "no-store" });
  });
};

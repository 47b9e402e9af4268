/**
 * Reading a watch: `GET /v1/watch` as newline-delimited JSON, one {@link WatchEvent} per change;
 * heartbeats are skipped; an error line (the watcher fell behind) throws with the revision to
 * resume from. Ends when the caller's signal aborts (or breaks out of the loop).
 */
import { ConclaveError } from "../lib/errors.ts";
import type { EndpointPool } from "./endpoint-pool.ts";

/** Longest line accepted (a 1 MiB value in base64 plus its fields). */
const lineBytesMax = 2 * 1024 * 1024;

/** One change. */
export interface WatchEvent {
  readonly revision: number;
  readonly key: string;
  readonly type: "put" | "delete";
  /** The new value of a put; null for a delete. */
  readonly value: Uint8Array | null;
}

export async function* watchChanges(
  pool: EndpointPool,
  prefix: string,
  options: { fromRevision?: number; signal?: AbortSignal },
): AsyncGenerator<WatchEvent> {
  const query = new URLSearchParams({ prefix });
  if (options.fromRevision !== undefined) query.set("fromRevision", String(options.fromRevision));
  const response = await pool.send({
    method: "GET",
    path: `/v1/watch?${query}`,
    primary: false,
    idempotent: true,
    stream: true,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  const reader = response.body?.getReader();
  if (reader === undefined) return;
  const decoder = new TextDecoder();
  let buffered = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buffered += decoder.decode(value, { stream: true });
      if (buffered.length > lineBytesMax * 2)
        throw new ConclaveError("CONCLAVE_WATCH_LINE_TOO_LONG", "a watch line is longer than the limit");
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        if (line === "") continue;
        const event = JSON.parse(line) as Record<string, unknown>;
        if (event.heartbeat === true) continue;
        if (typeof event.error === "string") {
          throw new ConclaveError(String(event.code), event.error, event);
        }
        yield {
          revision: Number(event.revision),
          key: String(event.key),
          type: event.type === "delete" ? "delete" : "put",
          value: typeof event.value === "string" ? new Uint8Array(Buffer.from(event.value, "base64")) : null,
        };
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/**
 * The `Database` port (src/ports/database.ts) over a {@link SqliteStateMachine}: what the HTTP
 * layer reads, plus `prepareSql` bound to the primary's clock and randomness and `encodeCommand`.
 *
 * @example
 * ```ts
 * const database = sqliteDatabase(machine, { now: () => new Date(), random: randomBytes });
 * database.kvGet("config/a");
 * ```
 */
import { createHash } from "node:crypto";
import type { Database, DatabaseCommand } from "../../ports/database.ts";
import {
  commandBytesMax,
  type DatabaseCommand as EncodableCommand,
  encodeCommand,
  kvKeyBytesMax,
  kvValueBytesMax,
  sqlStatementsPerCommandMax,
  stampWallClock,
} from "./commands.ts";
import { kvRangeLimitMax } from "./kv-store.ts";
import { changesPerReadMax } from "./kv-watch.ts";
import { prepareSql } from "./sql-rewrite.ts";
import type { SqliteStateMachine } from "./sqlite-state-machine.ts";

/** The primary's sources of non-determinism for `prepareSql`. */
export interface PrimaryEntropy {
  readonly now: () => Date;
  readonly random: (byteCount: number) => Uint8Array;
}

/** The Database port over `machine`. */
export function sqliteDatabase(machine: SqliteStateMachine, entropy: PrimaryEntropy): Database {
  // Read on every request (token check, sync timeout): cached until the next cluster change.
  let settings: ReturnType<SqliteStateMachine["cluster"]["settings"]> | null = null;
  machine.listenCluster(() => {
    settings = null;
  });
  return {
    limits: {
      kvKeyBytesMax,
      kvValueBytesMax,
      kvRangeLimitMax,
      changesPerReadMax,
      commandBytesMax,
      sqlStatementsPerCommandMax,
    },
    cluster: {
      members: () => machine.cluster.members(),
      departures: () => machine.cluster.departures(),
      removed: () => machine.cluster.removed(),
      settings: () => {
        settings ??= machine.cluster.settings();
        return settings;
      },
      listen: (listener) => machine.listenCluster(listener),
    },
    query: (sql, params = []) => machine.query(sql, params),
    kvGet: (key) => machine.kv.get(key),
    kvRange: (prefix, limit) => machine.kv.range(prefix, limit),
    kvRevision: () => machine.kv.revision,
    changesSince: (revision, prefix, limit) => machine.kv.watches.changesSince(revision, prefix, limit),
    listen: (listener) => machine.kv.watches.listen(listener),
    earliestLeaseExpiryMs: () => machine.kv.earliestLeaseExpiryMs(),
    prepareSql: (statements) => prepareSql(statements, { now: entropy.now(), random: entropy.random }),
    // The port's command type is the adapter's, with readonly arrays; the schema checks it anyway.
    encodeCommand: (command: DatabaseCommand) => encodeCommand(command as EncodableCommand),
    stampWallClock,
    contentHash: async () => {
      const appliedIndex = machine.appliedIndex;
      const { chunks } = machine.snapshot();
      const hash = createHash("sha256");
      for await (const chunk of chunks) hash.update(chunk);
      return { sha256: hash.digest("hex"), appliedIndex };
    },
  };
}

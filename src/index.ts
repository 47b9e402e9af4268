/**
 * The public library API of Conclave.
 *
 * @example
 * ```ts
 * import { createConclave } from "conclave";
 * const conclave = await createConclave({ configFile: "conclave.toml" });
 * conclave.onPrimary(async (signal) => leaderOnlyWork(signal));
 * await conclave.start();
 * await conclave.kv.put("greeting", "hello"); // on any member: a secondary forwards it
 * ```
 */
export {
  type ClientOptions,
  ConclaveClient,
  type Consistency,
  type ReadOptions,
  type Statement,
  type WatchEvent,
} from "./client/index.ts";
export type { ClusterStatusView, MemberStatusRow } from "./cluster/cluster-status.ts";
export { Conclave, ConclaveKv } from "./cluster/embedded-conclave.ts";
export type {
  EmbeddedReadOptions,
  KvTxnRequest,
  OperationOptions,
  WriteOutcome,
} from "./cluster/embedded-database.ts";
export { EmbeddedDb, EmbeddedKv } from "./cluster/embedded-database.ts";
export type { WatchOptions } from "./cluster/kv-watch-iterator.ts";
export { type AcquireOptions, type LockHandle, Locks } from "./cluster/locks.ts";
export type { Consistency as ReadConsistency } from "./cluster/read-barrier.ts";
export type { ConclaveEvents } from "./cluster/role-events.ts";
export {
  type ConclaveConfigSource,
  type ConclaveNode,
  createConclave,
  createNode,
  type NodeOptions,
  type NodeStatus,
} from "./conclave.ts";
export { type LoadConfigOptions, loadConfig, type NodeConfig } from "./config/index.ts";
export { ConclaveError, isConclaveError } from "./lib/errors.ts";
export type {
  Database,
  DatabaseCommand,
  KeyValue,
  KvChange,
  KvCompare,
  KvTxnOperation,
  QueryResult,
  SqlStatement,
  SqlValue,
  StatementResult,
} from "./ports/database.ts";
export type { StateMachine, StateMachineSnapshot } from "./ports/state-machine.ts";
export {
  type CallOptions,
  type ProposalOutcome,
  RaftRuntime,
  type ReadOutcome,
  type RuntimeErrorCode,
  type RuntimeEvents,
  type RuntimeStats,
  runtimeErrorCodes,
} from "./runtime/index.ts";

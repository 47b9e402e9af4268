/**
 * The public library API of Conclave.
 *
 * @example
 * ```ts
 * import { createNode, loadConfig } from "conclave";
 * const node = await createNode(await loadConfig({ file: "conclave.toml" }));
 * await node.start();
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
export { type ConclaveNode, createNode, type NodeOptions, type NodeStatus } from "./conclave.ts";
export { type LoadConfigOptions, loadConfig, type NodeConfig } from "./config/index.ts";
export { ConclaveError, isConclaveError } from "./lib/errors.ts";
export type { Database, DatabaseCommand, KeyValue, KvChange, SqlValue } from "./ports/database.ts";
export type { StateMachine, StateMachineSnapshot } from "./ports/state-machine.ts";
export {
  type CallOptions,
  type ProposalOutcome,
  RaftRuntime,
  type ReadOutcome,
  type RuntimeErrorCode,
  type RuntimeEvents,
  runtimeErrorCodes,
} from "./runtime/index.ts";

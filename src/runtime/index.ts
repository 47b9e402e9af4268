/** The node loop: a Raft core driven through the ports. */
export type { AppliedPoint } from "./applier.ts";
export type { ForwardingLimits, ForwardingStats } from "./forwarding.ts";
export type { ProposalOutcome, ReadOutcome } from "./pending-calls.ts";
export {
  type CallOptions,
  RaftRuntime,
  type RaftRuntimeOptions,
  type RuntimeStats,
} from "./raft-runtime.ts";
export { type RuntimeErrorCode, runtimeErrorCodes } from "./runtime-errors.ts";
export type { RuntimeEvents } from "./runtime-events.ts";

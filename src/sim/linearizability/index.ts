/** The linearizability checker's public surface; see DESIGN.md. */
export { type CheckFigures, type CheckOptions, type CheckResult, checkLinearizability } from "./checker.ts";
export {
  type History,
  HistoryRecorder,
  type HistoryRecorderOptions,
  isOutcomeUnknown,
  type Operation,
  type OperationHandle,
} from "./history.ts";
export { type KvInput, type KvKeyState, type KvOutput, kvModel } from "./kv-model.ts";
export type { Model, StepResult } from "./model.ts";
export { growOnlySetModel, type SetInput, type SetOutput, type SetState } from "./set-model.ts";

/**
 * The specification of Conclave's key-value store: a map of string registers with get, put,
 * delete and compare-and-set, checked one key at a time.
 */
import { ConclaveError } from "../../lib/errors.ts";
import type { History, Operation } from "./history.ts";
import type { Model, StepResult } from "./model.ts";

/** A request to the key-value store. `cas` with `expected: null` means "only if absent". */
export type KvInput =
  | { op: "get"; key: string }
  | { op: "put"; key: string; value: string }
  | { op: "delete"; key: string }
  | { op: "cas"; key: string; expected: string | null; value: string };

/**
 * An answer of the key-value store. `get` answers `null` for an absent key. `delete` reports
 * whether the key existed (ok / notfound), so that a lost or duplicated delete shows up;
 * `cas` reports whether it swapped.
 */
export type KvOutput =
  | { op: "get"; value: string | null }
  | { op: "put" }
  | { op: "delete"; existed: boolean }
  | { op: "cas"; ok: boolean };

/** The state of one key: its value, or `null` when absent. */
export type KvKeyState = string | null;

type KvOperation = Operation<KvInput, KvOutput>;

function stepKv(value: KvKeyState, input: KvInput, output: KvOutput | null): StepResult<KvKeyState> {
  switch (input.op) {
    case "get":
      return { ok: output === null || (output.op === "get" && output.value === value), state: value };
    case "put":
      return { ok: true, state: input.value };
    case "delete":
      return {
        ok: output === null || (output.op === "delete" && output.existed === (value !== null)),
        state: null,
      };
    case "cas": {
      const swaps = value === input.expected;
      const ok = output === null || (output.op === "cas" && output.ok === swaps);
      return { ok, state: swaps ? input.value : value };
    }
  }
}

/**
 * Gets, failed cas and deletes of an absent key change nothing wherever they fit. A get with an
 * unknown outcome is read-only too; other unknown outcomes may have written.
 */
function isKvReadOnly(input: KvInput, output: KvOutput | null): boolean {
  if (input.op === "get") return true;
  if (output === null) return false;
  return (output.op === "cas" && !output.ok) || (output.op === "delete" && !output.existed);
}

function describeKvOutput(output: KvOutput | null): string {
  if (output === null) return "?";
  switch (output.op) {
    case "get":
      return JSON.stringify(output.value);
    case "put":
      return "ok";
    case "delete":
      return output.existed ? "ok" : "notfound";
    case "cas":
      return output.ok ? "ok" : "failed";
  }
}

function describeKvInput(input: KvInput): string {
  const key = JSON.stringify(input.key);
  switch (input.op) {
    case "get":
      return `get(${key})`;
    case "put":
      return `put(${key}, ${JSON.stringify(input.value)})`;
    case "delete":
      return `delete(${key})`;
    case "cas":
      return `cas(${key}, ${JSON.stringify(input.expected)} -> ${JSON.stringify(input.value)})`;
  }
}

function checkOutputMatchesInput(operation: KvOperation, index: number): void {
  if (operation.output !== null && operation.output.op !== operation.input.op) {
    throw new ConclaveError(
      "CONCLAVE_HISTORY_INVALID",
      `Operation ${index} is a ${operation.input.op} but its output is a ${operation.output.op}; record the output of the request that was sent.`,
      { index },
    );
  }
}

/**
 * Splits a key-value history into one sub-history per key (keys are independent registers).
 * Gets whose outcome is unknown are dropped: they change nothing and nobody saw their answer.
 */
function partitionByKey(history: History<KvInput, KvOutput>): KvOperation[][] {
  const byKey = new Map<string, KvOperation[]>();
  history.forEach((operation, index) => {
    checkOutputMatchesInput(operation, index);
    if (operation.input.op === "get" && operation.return === null) return;
    let operations = byKey.get(operation.input.key);
    if (operations === undefined) {
      operations = [];
      byKey.set(operation.input.key, operations);
    }
    operations.push(operation);
  });
  return [...byKey.values()];
}

/**
 * The key-value store model. Its state is the value of a single key, which is sound only
 * because {@link Model.partition} always splits the history per key before the search.
 *
 * @example
 * ```ts
 * const result = checkLinearizability(recorder.history(), kvModel);
 * if (result.result === "violation") console.error(result.explanation);
 * ```
 */
export const kvModel: Model<KvKeyState, KvInput, KvOutput> = {
  init: () => null,
  step: stepKv,
  isReadOnly: isKvReadOnly,
  partition: partitionByKey,
  describePartition: (operations) => {
    const first = operations[0];
    return first === undefined ? "no key" : `key ${JSON.stringify(first.input.key)}`;
  },
  stateKey: (value) => JSON.stringify(value),
  describe: (input, output) => `${describeKvInput(input)} -> ${describeKvOutput(output)}`,
};

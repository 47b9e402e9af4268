/**
 * The specification of a grow-only set: `add(value)` and `read()` of the whole set. The second
 * workload of the tier-2 tests. A read sees every element, so the history is not partitioned.
 */
import type { Model, StepResult } from "./model.ts";

/** A request to the grow-only set. */
export type SetInput = { op: "add"; value: string } | { op: "read" };

/** An answer of the grow-only set: a read lists the elements in any order. */
export type SetOutput = { op: "add" } | { op: "read"; values: readonly string[] };

/** The set's elements, sorted, and their memoization key. */
export interface SetState {
  readonly values: readonly string[];
  readonly key: string;
}

function setState(values: readonly string[]): SetState {
  return { values, key: JSON.stringify(values) };
}

/**
 * The canonical key of what a read returned, computed once per output object: the search
 * compares the same read against many states. Duplicates are kept, so a read that lists an
 * element twice matches no state, which is right for a set.
 */
const readKeys = new WeakMap<readonly string[], string>();
function readKey(values: readonly string[]): string {
  let key = readKeys.get(values);
  if (key === undefined) {
    key = JSON.stringify([...values].sort());
    readKeys.set(values, key);
  }
  return key;
}

function insertSorted(values: readonly string[], value: string): readonly string[] {
  let low = 0;
  let high = values.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((values[middle] as string) < value) low = middle + 1;
    else high = middle;
  }
  if (values[low] === value) return values;
  return [...values.slice(0, low), value, ...values.slice(low)];
}

function stepSet(state: SetState, input: SetInput, output: SetOutput | null): StepResult<SetState> {
  if (input.op === "add") {
    const values = insertSorted(state.values, input.value);
    return { ok: true, state: values === state.values ? state : setState(values) };
  }
  if (output === null) return { ok: true, state };
  return { ok: output.op === "read" && readKey(output.values) === state.key, state };
}

/**
 * The grow-only set model.
 *
 * @example
 * ```ts
 * const result = checkLinearizability(history, growOnlySetModel);
 * ```
 */
export const growOnlySetModel: Model<SetState, SetInput, SetOutput> = {
  init: () => setState([]),
  step: stepSet,
  isReadOnly: (input) => input.op === "read",
  describePartition: () => "the set",
  stateKey: (state) => state.key,
  describe: (input, output) => {
    const call = input.op === "add" ? `add(${JSON.stringify(input.value)})` : "read()";
    if (output === null) return `${call} -> ?`;
    return output.op === "read" ? `${call} -> ${JSON.stringify(output.values)}` : `${call} -> ok`;
  },
};

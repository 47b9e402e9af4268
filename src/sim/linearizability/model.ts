/**
 * What the checker needs to know about the object under test: a sequential specification.
 */
import type { History, Operation } from "./history.ts";

/** The answer of {@link Model.step}: whether the output is legal, and the state after. */
export interface StepResult<S> {
  ok: boolean;
  state: S;
}

/**
 * A sequential specification of an object (a register, a map, a set).
 *
 * `step` must be a pure, deterministic function of its arguments: the search calls it many times
 * on the same state and backtracks by keeping old states, so it must never mutate `state`.
 * `output === null` means the client never learned the outcome: `step` then applies the
 * operation as the object would have (and returns `ok: true` unless the input alone is illegal).
 *
 * `partition`, when present, splits a history into independent sub-histories (P-compositionality,
 * e.g. one per key of a map); each is checked on its own, which turns one huge search into many
 * small ones. Every operation must land in exactly one partition.
 *
 * @example
 * ```ts
 * const register: Model<number, RegisterInput, RegisterOutput> = {
 *   init: () => 0,
 *   step: (s, input, output) => input.op === "write" ? { ok: true, state: input.value }
 *     : { ok: output === null || output.value === s, state: s },
 *   stateKey: (s) => String(s),
 *   describe: (input, output) => `${input.op} ${JSON.stringify(output)}`,
 * };
 * ```
 */
export interface Model<S, I, O> {
  /** The state before any operation. */
  init(): S;
  /** Applies one operation to `state` (without mutating it); `ok` is false if `output` is impossible. */
  step(state: S, input: I, output: O | null): StepResult<S>;
  /** Splits a history into sub-histories that can be checked independently. */
  partition?(history: History<I, O>): Operation<I, O>[][];
  /** A short name for a partition in explanations, e.g. `key "a"`. */
  describePartition?(operations: readonly Operation<I, O>[]): string;
  /**
   * True when the operation leaves every state in which it fits unchanged (a read, a failed
   * cas). The search then takes it as soon as it fits instead of branching on it, which keeps
   * histories with many concurrent reads tractable. Answer false when unsure.
   */
  isReadOnly?(input: I, output: O | null): boolean;
  /** A string equal for equal states and different for different ones: the memoization key. */
  stateKey(state: S): string;
  /** A short human description of one operation, e.g. `put("a", "1") -> ok`. */
  describe(input: I, output: O | null): string;
}

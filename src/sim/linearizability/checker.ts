/**
 * The linearizability checker: validates a history, splits it with the model's partition
 * (P-compositionality), searches each partition for a linearization, and reports a typed result.
 */
import { ConclaveError } from "../../lib/errors.ts";
import { explainViolation } from "./explanation.ts";
import type { History, Operation } from "./history.ts";
import type { Model } from "./model.ts";
import { type SearchBudget, searchPartition } from "./search.ts";

/** Limits of one check. When one is reached the result is `unknown`, never `ok`. */
export interface CheckOptions {
  /** Wall-clock budget for the whole check (default 60,000 ms). */
  timeBudgetMs?: number;
  /** Search steps for the whole check, over all partitions (default 50,000,000); see {@link CheckFigures.steps}. */
  stepsMax?: number;
  /** Bound on the memo cache of one partition (default 1 GiB). */
  cacheBytesMax?: number;
  /** The clock the time budget reads (default `performance.now`). */
  now?: () => number;
}

/** Figures every result carries, so that callers can print what was checked. */
export interface CheckFigures {
  /** Operations in the partitions that were searched. */
  operationsChecked: number;
  /** Partitions the model split the history into. */
  partitions: number;
  /** Distinct (linearized set, state) configurations the search visited. */
  statesExplored: number;
  /** Search steps spent: entries visited, plus one per look for a read-only operation. */
  steps: number;
}

/** The answer of {@link checkLinearizability}. */
export type CheckResult<I, O> =
  | ({ result: "ok" } & CheckFigures)
  | ({
      result: "violation";
      /** Index in the model's partition of the history. */
      partitionIndex: number;
      /** Names the partition (for the key-value model: the key) and says why nothing fits. */
      explanation: string;
      /** The longest sequence of the partition's operations that the search could linearize. */
      longestLinearizedPrefix: Operation<I, O>[];
    } & CheckFigures)
  | ({ result: "unknown"; reason: string } & CheckFigures);

const timeBudgetMsDefault = 60_000;
const stepsMaxDefault = 50_000_000;
const cacheBytesMaxDefault = 1024 * 1024 * 1024;
/** Reading the clock on every step would cost more than the step itself. */
const stepsPerClockReading = 1024;

function invalid(index: number, problem: string): never {
  throw new ConclaveError(
    "CONCLAVE_HISTORY_INVALID",
    `Operation ${index} of the history ${problem}; record call and return with one monotonic clock, and null return and output together for an unknown outcome.`,
    { index },
  );
}

function validateHistory<I, O>(history: History<I, O>): void {
  history.forEach((operation, index) => {
    if (!Number.isFinite(operation.call)) invalid(index, `has a call time of ${operation.call}`);
    if (operation.return === null) {
      if (operation.output !== null) invalid(index, "has an output but no return time");
      return;
    }
    if (!Number.isFinite(operation.return) || operation.return < operation.call) {
      invalid(index, `returns at ${operation.return}, before its call at ${operation.call}`);
    }
    if (operation.output === null) invalid(index, "has a return time but no output");
  });
}

class StepAndTimeBudget implements SearchBudget {
  steps = 0;
  readonly #stepsMax: number;
  readonly #cacheBytesMax: number;
  readonly #deadline: number;
  readonly #timeBudgetMs: number;
  readonly #now: () => number;

  constructor(options: CheckOptions) {
    this.#stepsMax = options.stepsMax ?? stepsMaxDefault;
    this.#cacheBytesMax = options.cacheBytesMax ?? cacheBytesMaxDefault;
    this.#timeBudgetMs = options.timeBudgetMs ?? timeBudgetMsDefault;
    this.#now = options.now ?? (() => performance.now());
    this.#deadline = this.#now() + this.#timeBudgetMs;
  }

  spend(): string | null {
    if (this.steps >= this.#stepsMax) return `the search used its ${this.#stepsMax} steps (stepsMax)`;
    this.steps++;
    if (this.steps % stepsPerClockReading === 0 && this.#now() > this.#deadline) {
      return `the search ran out of its ${this.#timeBudgetMs} ms (timeBudgetMs)`;
    }
    return null;
  }

  checkCacheBytes(bytes: number): string | null {
    return bytes > this.#cacheBytesMax
      ? `the memo cache outgrew ${this.#cacheBytesMax} bytes (cacheBytesMax)`
      : null;
  }
}

/**
 * Checks that `history` is linearizable with respect to `model`: that some total order of its
 * operations, consistent with real time (an operation that returned before another was called
 * comes first), is a legal sequential run of the model. Operations with an unknown outcome may be
 * placed anywhere after their call, or left out.
 *
 * Partitions are searched in order and the check stops at the first violation. If the budget
 * runs out first the result is `unknown`, naming the partition it stopped in.
 *
 * @example
 * ```ts
 * const result = checkLinearizability(recorder.history(), kvModel, { timeBudgetMs: 10_000 });
 * if (result.result !== "ok") throw new Error(result.result === "violation" ? result.explanation : result.reason);
 * ```
 */
export function checkLinearizability<S, I, O>(
  history: History<I, O>,
  model: Model<S, I, O>,
  options: CheckOptions = {},
): CheckResult<I, O> {
  validateHistory(history);
  const partitions = model.partition?.(history) ?? [[...history]];
  const budget = new StepAndTimeBudget(options);
  const figures: CheckFigures = {
    operationsChecked: 0,
    partitions: partitions.length,
    statesExplored: 0,
    steps: 0,
  };

  for (const [partitionIndex, operations] of partitions.entries()) {
    figures.operationsChecked += operations.length;
    const outcome = searchPartition(operations, model, budget);
    figures.statesExplored += outcome.statesExplored;
    figures.steps = budget.steps;
    const label = model.describePartition?.(operations) ?? `partition ${partitionIndex}`;
    if (outcome.kind === "exhausted") {
      const reason = `${outcome.reason} in ${label} (partition ${partitionIndex + 1} of ${partitions.length}, ${operations.length} operations); the partitions before it are linearizable`;
      return { result: "unknown", reason, ...figures };
    }
    if (outcome.kind === "violation") {
      return {
        result: "violation",
        partitionIndex,
        explanation: explainViolation(model, operations, outcome.longestPrefix, label),
        longestLinearizedPrefix: outcome.longestPrefix.map((index) => operations[index] as Operation<I, O>),
        ...figures,
      };
    }
  }
  return { result: "ok", ...figures };
}

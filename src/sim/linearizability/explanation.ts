/**
 * Turns a failed search into words a person can debug from: where the longest linearizable
 * prefix ends, what state the object is in there, and why no operation fits next.
 */
import { assert } from "../../lib/assert.ts";
import type { Operation } from "./history.ts";
import type { Model } from "./model.ts";
import { EntryList } from "./search.ts";

const candidatesShownMax = 10;
const prefixShownMax = 10;

function formatOperation<S, I, O>(model: Model<S, I, O>, operation: Operation<I, O>): string {
  const returned = operation.return === null ? "no return" : `return ${operation.return}`;
  return `client ${operation.clientId}: ${model.describe(operation.input, operation.output)} [call ${operation.call}, ${returned}]`;
}

/** Replays the prefix through the model; the search already found each step legal. */
function stateAfter<S, I, O>(
  model: Model<S, I, O>,
  operations: readonly Operation<I, O>[],
  prefix: readonly number[],
): S {
  let state = model.init();
  for (const index of prefix) {
    const operation = operations[index] as Operation<I, O>;
    const step = model.step(state, operation.input, operation.output);
    assert(step.ok, () => `the longest prefix replays: ${model.describe(operation.input, operation.output)}`);
    state = step.state;
  }
  return state;
}

/**
 * The operations that could be linearized right after the prefix (called before the earliest
 * return of an operation outside it), and that earliest-returning operation.
 */
function nextCandidates<I, O>(
  operations: readonly Operation<I, O>[],
  prefix: ReadonlySet<number>,
): { candidates: number[]; due: number | null } {
  const list = new EntryList(operations);
  const candidates: number[] = [];
  for (let node = 1; node < list.next.length; node++) {
    const index = list.operationOf[node] as number;
    if (prefix.has(index)) continue;
    if (!list.isCall(node)) return { candidates, due: index };
    candidates.push(index);
  }
  return { candidates, due: null };
}

/** A multi-line explanation of why `operations` (one partition) has no linearization. */
export function explainViolation<S, I, O>(
  model: Model<S, I, O>,
  operations: readonly Operation<I, O>[],
  longestPrefix: readonly number[],
  partitionLabel: string,
): string {
  const state = stateAfter(model, operations, longestPrefix);
  const { candidates, due } = nextCandidates(operations, new Set(longestPrefix));
  const lines = [
    `${partitionLabel}: not linearizable. The longest linearizable prefix holds ${longestPrefix.length} of ` +
      `${operations.length} operations and leaves the state ${model.stateKey(state)}.`,
  ];
  if (due !== null) {
    const dueOperation = operations[due] as Operation<I, O>;
    lines.push(
      `Then ${model.describe(dueOperation.input, dueOperation.output)} (client ${dueOperation.clientId}) must take ` +
        `effect before it returned at ${dueOperation.return}, but no operation that may come next fits:`,
    );
  }
  for (const index of candidates.slice(0, candidatesShownMax)) {
    const operation = operations[index] as Operation<I, O>;
    const fits = model.step(state, operation.input, operation.output).ok;
    const why = fits
      ? "fits here, but every order that continues with it fails later"
      : "impossible in this state";
    lines.push(`  - ${formatOperation(model, operation)}: ${why}`);
  }
  if (candidates.length > candidatesShownMax) {
    lines.push(`  - and ${candidates.length - candidatesShownMax} more`);
  }
  const shown = longestPrefix.slice(-prefixShownMax);
  const skipped = longestPrefix.length - shown.length;
  lines.push(
    skipped > 0
      ? `Longest linearizable prefix (its last ${shown.length}, after ${skipped} earlier):`
      : "Longest linearizable prefix:",
  );
  shown.forEach((index, position) => {
    lines.push(
      `  ${skipped + position + 1}. ${formatOperation(model, operations[index] as Operation<I, O>)}`,
    );
  });
  return lines.join("\n");
}

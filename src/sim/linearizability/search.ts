/**
 * The Wing & Gong search with Lowe's memoization over one partition of a history, as Porcupine
 * does it, with an explicit stack instead of recursion.
 *
 * The history becomes a doubly linked list of call and return entries sorted by time. The search
 * walks the list from the front: at a call entry it tries to linearize that operation next (the
 * model accepts its output in the current state, and the resulting configuration was not seen
 * before); if so it lifts the operation's two entries out of the list, pushes it and starts again
 * from the front. Reaching a return entry means the operation returning there should already have
 * been linearized: the search pops the last choice, puts its entries back (unlift) and tries the
 * call after it. An empty stack at a return entry means no linearization exists.
 *
 * Operations whose outcome is unknown get no return entry: nothing forces them, so the search may
 * linearize them anywhere after their call, or never. The search succeeds once every operation
 * with a known outcome is linearized.
 *
 * One addition to Porcupine: in each new configuration, a pending read-only operation that fits
 * (see {@link Model.isReadOnly}) is taken at once without branching, and when the configuration
 * after such a forced choice fails, the one before it fails too (DESIGN.md has the argument).
 * Without it, every subset of the reads in flight is a distinct configuration to explore.
 */
import { assert } from "../../lib/assert.ts";
import { ConfigurationCache, LinearizedSet } from "./bitset.ts";
import type { Operation } from "./history.ts";
import type { Model } from "./model.ts";

/** The shared limits of one check; every partition spends from the same budget. */
export interface SearchBudget {
  /** Spends one step; returns a reason when the budget is exhausted, else `null`. */
  spend(): string | null;
  /** Reason to stop when the memo cache grew beyond its bound, else `null`. */
  checkCacheBytes(bytes: number): string | null;
}

/** The outcome of searching one partition; operation numbers index the partition's array. */
export type PartitionOutcome =
  | { kind: "ok"; statesExplored: number }
  | { kind: "violation"; statesExplored: number; longestPrefix: number[] }
  | { kind: "exhausted"; statesExplored: number; reason: string };

const head = 0;
const none = -1;

/**
 * The entry list. Node 0 is the head sentinel; nodes 1..n are the entries in time order. At equal
 * times calls sort before returns, so an operation returning at t and one called at t overlap.
 */
export class EntryList {
  readonly next: Int32Array;
  readonly prev: Int32Array;
  /** The operation of each entry. */
  readonly operationOf: Int32Array;
  /** For a call entry, its return entry (`none` if the outcome is unknown); for a return, -2. */
  readonly returnOf: Int32Array;

  constructor(operations: readonly Operation<unknown, unknown>[]) {
    const events: { time: number; isReturn: number; operation: number }[] = [];
    operations.forEach((operation, index) => {
      events.push({ time: operation.call, isReturn: 0, operation: index });
      if (operation.return !== null) events.push({ time: operation.return, isReturn: 1, operation: index });
    });
    events.sort((a, b) => a.time - b.time || a.isReturn - b.isReturn || a.operation - b.operation);
    const size = events.length + 1;
    this.next = new Int32Array(size);
    this.prev = new Int32Array(size);
    this.operationOf = new Int32Array(size).fill(none);
    this.returnOf = new Int32Array(size).fill(-2);
    const callNode = new Int32Array(operations.length);
    events.forEach((event, position) => {
      const node = position + 1;
      this.operationOf[node] = event.operation;
      if (event.isReturn === 0) {
        callNode[event.operation] = node;
        this.returnOf[node] = none;
      } else {
        this.returnOf[callNode[event.operation] as number] = node;
      }
    });
    for (let node = 0; node < size; node++) {
      this.next[node] = node + 1 < size ? node + 1 : none;
      this.prev[node] = node - 1;
    }
  }

  isCall(node: number): boolean {
    return (this.returnOf[node] as number) !== -2;
  }

  /** Takes a call entry and its return entry out of the list (they keep their own links). */
  lift(callNode: number): void {
    this.#unlink(callNode);
    const returnNode = this.returnOf[callNode] as number;
    if (returnNode !== none) this.#unlink(returnNode);
  }

  /** Puts back what {@link lift} took out; lifts and unlifts nest like a stack. */
  unlift(callNode: number): void {
    const returnNode = this.returnOf[callNode] as number;
    if (returnNode !== none) this.#relink(returnNode);
    this.#relink(callNode);
  }

  #unlink(node: number): void {
    const before = this.prev[node] as number;
    const after = this.next[node] as number;
    this.next[before] = after;
    if (after !== none) this.prev[after] = before;
  }

  #relink(node: number): void {
    const before = this.prev[node] as number;
    const after = this.next[node] as number;
    this.next[before] = node;
    if (after !== none) this.prev[after] = node;
  }
}

/**
 * The longest path the search reached, kept in amortized O(1) per step: only the part of the
 * path below which the search has not backtracked since the last record is copied.
 */
class LongestPath {
  readonly operations: number[] = [];
  #unchangedDepth = 0;

  onPop(depth: number): void {
    if (depth < this.#unchangedDepth) this.#unchangedDepth = depth;
  }

  onPush(path: readonly number[]): void {
    if (path.length <= this.operations.length) return;
    this.operations.length = Math.min(this.#unchangedDepth, this.operations.length);
    for (let i = this.operations.length; i < path.length; i++) this.operations.push(path[i] as number);
    this.#unchangedDepth = path.length;
  }
}

/**
 * Original indices in the order the search numbers operations: known outcomes by call time, then
 * unknown outcomes. This keeps linearized sets compact (see {@link LinearizedSet.snapshot}).
 */
function searchOrder(operations: readonly Operation<unknown, unknown>[]): number[] {
  const rank = (index: number): number =>
    (operations[index] as Operation<unknown, unknown>).return === null ? 1 : 0;
  const call = (index: number): number => (operations[index] as Operation<unknown, unknown>).call;
  return operations.map((_, index) => index).sort((a, b) => rank(a) - rank(b) || call(a) - call(b) || a - b);
}

/** Where the search stands: the path of choices, with the entry list and memo cache. */
class PartitionSearch<S, I, O> {
  readonly #operations: readonly Operation<I, O>[];
  readonly #model: Model<S, I, O>;
  readonly #list: EntryList;
  readonly #linearized: LinearizedSet;
  readonly #pathNodes: number[] = [];
  readonly #pathOperations: number[] = [];
  readonly #pathStates: S[] = [];
  /** Whether each choice on the path was forced (a read-only operation taken without branching). */
  readonly #pathForced: boolean[] = [];
  readonly cache = new ConfigurationCache();
  readonly longest = new LongestPath();
  knownLeft: number;
  state: S;
  node: number;

  constructor(operations: readonly Operation<I, O>[], model: Model<S, I, O>) {
    this.#operations = operations;
    this.#model = model;
    this.#list = new EntryList(operations);
    this.#linearized = new LinearizedSet(operations.length);
    this.knownLeft = operations.filter((operation) => operation.return !== null).length;
    this.state = model.init();
    this.node = this.#list.next[head] as number;
  }

  /**
   * Makes the operation of call entry `node` the next in the linearization, unless the
   * configuration that leads to was explored before (it failed then, so it would fail again).
   */
  push(node: number, after: S, forced: boolean): boolean {
    const list = this.#list;
    const index = list.operationOf[node] as number;
    this.#linearized.add(index);
    if (!this.cache.addIfAbsent(this.#linearized, this.#model.stateKey(after))) {
      this.#linearized.delete(index);
      return false;
    }
    this.#pathNodes.push(node);
    this.#pathOperations.push(index);
    this.#pathStates.push(this.state);
    this.#pathForced.push(forced);
    this.longest.onPush(this.#pathOperations);
    this.state = after;
    list.lift(node);
    if ((this.#operations[index] as Operation<I, O>).return !== null) this.knownLeft--;
    this.node = list.next[head] as number;
    return true;
  }

  /**
   * Undoes choices until one can be replaced by the next call entry after it; false when the
   * path is empty, i.e. no linearization exists. A forced choice is never replaced: the
   * configuration before it fails whenever the one after it does (see DESIGN.md).
   */
  backtrack(): boolean {
    for (;;) {
      const node = this.#pathNodes.pop();
      if (node === undefined) return false;
      const index = this.#pathOperations.pop() as number;
      const forced = this.#pathForced.pop() as boolean;
      this.state = this.#pathStates.pop() as S;
      this.longest.onPop(this.#pathOperations.length);
      this.#linearized.delete(index);
      this.#list.unlift(node);
      if ((this.#operations[index] as Operation<I, O>).return !== null) this.knownLeft++;
      if (!forced) {
        this.node = this.#list.next[node] as number;
        return true;
      }
    }
  }

  /**
   * Tries the call entry at `node` as the next operation, or moves on to the entry after it.
   * At a return entry nothing fits any more: that operation should have been linearized by now.
   */
  tryNode(): "pushed" | "moved-on" | "at-return" {
    const node = this.node;
    assert(node !== none, "the entry list ended before every known operation was linearized");
    if (!this.#list.isCall(node)) return "at-return";
    const operation = this.#operations[this.#list.operationOf[node] as number] as Operation<I, O>;
    const step = this.#model.step(this.state, operation.input, operation.output);
    if (step.ok && this.push(node, step.state, false)) return "pushed";
    this.node = this.#list.next[node] as number;
    return "moved-on";
  }

  /**
   * The first operation that may come next, never changes the state, and fits in it: taking it
   * at once loses no linearization, so the search does not branch on it.
   */
  firstFittingReadOnly(): number {
    const model = this.#model;
    if (model.isReadOnly === undefined) return none;
    const list = this.#list;
    for (
      let node = list.next[head] as number;
      node !== none && list.isCall(node);
      node = list.next[node] as number
    ) {
      const operation = this.#operations[list.operationOf[node] as number] as Operation<I, O>;
      if (!model.isReadOnly(operation.input, operation.output)) continue;
      if (model.step(this.state, operation.input, operation.output).ok) return node;
    }
    return none;
  }
}

/**
 * Searches one partition for a linearization. Exponential in the worst case (see DESIGN.md).
 * The longest prefix of a violation holds indices into `partition`.
 */
export function searchPartition<S, I, O>(
  partition: readonly Operation<I, O>[],
  model: Model<S, I, O>,
  budget: SearchBudget,
): PartitionOutcome {
  const order = searchOrder(partition);
  const search = new PartitionSearch(
    order.map((index) => partition[index] as Operation<I, O>),
    model,
  );
  let freshConfiguration = true;
  while (search.knownLeft > 0) {
    const stop = budget.spend() ?? budget.checkCacheBytes(search.cache.bytes);
    if (stop !== null) return { kind: "exhausted", statesExplored: search.cache.entryCount, reason: stop };
    if (freshConfiguration) {
      freshConfiguration = false;
      const readOnly = search.firstFittingReadOnly();
      if (readOnly === none) continue;
      // A read-only operation fits: take it. If that configuration failed before, so does this one.
      if (search.push(readOnly, search.state, true)) freshConfiguration = true;
      else if (!search.backtrack()) break;
      continue;
    }
    const tried = search.tryNode();
    if (tried === "pushed") freshConfiguration = true;
    else if (tried === "at-return" && !search.backtrack()) break;
  }
  if (search.knownLeft === 0) return { kind: "ok", statesExplored: search.cache.entryCount };
  const longestPrefix = search.longest.operations.map((index) => order[index] as number);
  return { kind: "violation", statesExplored: search.cache.entryCount, longestPrefix };
}

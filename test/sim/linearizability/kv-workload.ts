/**
 * Builds key-value histories for the tests: by hand (`kvOperation`) or by running planned client
 * operations atomically against a real Map at a chosen moment inside each operation's interval,
 * which by construction gives a linearizable history.
 */
import type { KvInput, KvOutput, Operation } from "../../../src/sim/linearizability/index.ts";

export type KvOperation = Operation<KvInput, KvOutput>;

/** A hand-written operation; `returned: null` makes its outcome unknown. */
export function kvOperation(
  clientId: number,
  call: number,
  returned: number | null,
  input: KvInput,
  output: KvOutput | null,
): KvOperation {
  return { clientId, input, call, return: returned, output: returned === null ? null : output };
}

/** What happens to one planned operation. */
export type Fate = "completed" | "unknown-applied" | "unknown-lost";

/** One step of one client: wait `gapTicks`, call, and (maybe) learn the answer `durationTicks` later. */
export interface PlannedStep {
  input: KvInput;
  gapTicks: number;
  durationTicks: number;
  /** Where inside the interval the operation takes effect, 0 (at the call) to 1 (at the return). */
  effectFraction: number;
  fate: Fate;
}

/** Runs one operation against the store and returns its answer. */
export function applyToMap(store: Map<string, string>, input: KvInput): KvOutput {
  const current = store.get(input.key) ?? null;
  switch (input.op) {
    case "get":
      return { op: "get", value: current };
    case "put":
      store.set(input.key, input.value);
      return { op: "put" };
    case "delete":
      store.delete(input.key);
      return { op: "delete", existed: current !== null };
    case "cas": {
      const ok = current === input.expected;
      if (ok) store.set(input.key, input.value);
      return { op: "cas", ok };
    }
  }
}

/**
 * Each client runs its steps one after another; every operation takes effect atomically at one
 * moment of its interval (an unknown one perhaps after the client gave up, or never).
 */
export function runPlannedClients(clients: readonly (readonly PlannedStep[])[]): KvOperation[] {
  const planned: { operation: KvOperation; effectAt: number | null }[] = [];
  clients.forEach((steps, clientId) => {
    let now = 0;
    for (const step of steps) {
      const call = now + step.gapTicks;
      const end = call + step.durationTicks;
      // A request whose answer was lost may still be applied after the client stopped waiting.
      const span = step.fate === "unknown-applied" ? step.durationTicks * 3 : step.durationTicks;
      const effectAt = step.fate === "unknown-lost" ? null : call + step.effectFraction * span;
      const returned = step.fate === "completed" ? end : null;
      planned.push({ operation: kvOperation(clientId, call, returned, step.input, null), effectAt });
      now = end;
    }
  });
  const store = new Map<string, string>();
  const inEffectOrder = planned
    .filter((entry) => entry.effectAt !== null)
    .sort((a, b) => (a.effectAt as number) - (b.effectAt as number));
  for (const { operation } of inEffectOrder) {
    const output = applyToMap(store, operation.input);
    if (operation.return !== null) operation.output = output;
  }
  return planned.map((entry) => entry.operation);
}

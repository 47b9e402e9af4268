/**
 * The soak's faults, one at a time with a calm gap between them, drawn from a seeded schedule:
 * SIGKILL of the primary or of a secondary (restarted on its data directory after a moment),
 * SIGSTOP of the primary or a secondary (resumed after one to four seconds, longer than an
 * election), a planned switchover to a random secondary, and a crash of every member at once.
 * With a network lab (`--partitions on`), also network cuts held for two to six seconds: the
 * primary or a secondary isolated from every other member, a bridge (the primary and one
 * secondary cannot reach each other; the rest reach both), and a deaf primary (it sends, but
 * nothing reaches it).
 *
 * A node that exits when we did not kill it is a crash of Conclave itself: it is recorded with
 * the end of its output, restarted (so the run goes on) and fails the run.
 */
import { setTimeout as delay } from "node:timers/promises";
import { Prng } from "../src/lib/prng.ts";
import { authorizedFetch } from "../test/e2e/api-token.ts";
import { believedPrimary, restart } from "../test/e2e/kv-history-workload.ts";
import type { NetworkLab } from "../test/e2e/network-lab.ts";
import type { ProcessCluster } from "../test/e2e/node-processes.ts";

export const faultKinds = [
  "kill-primary",
  "kill-secondary",
  "pause-primary",
  "pause-secondary",
  "switchover",
  "kill-all",
  "isolate-primary",
  "isolate-secondary",
  "bridge",
  "deaf-primary",
] as const;
export type FaultKind = (typeof faultKinds)[number];

/** Faults that need a network lab. */
const networkFaults: ReadonlySet<FaultKind> = new Set([
  "isolate-primary",
  "isolate-secondary",
  "bridge",
  "deaf-primary",
]);

/** How often each fault is drawn, relative to the others. */
const weights: Record<FaultKind, number> = {
  "kill-primary": 3,
  "kill-secondary": 2,
  "pause-primary": 2,
  "pause-secondary": 1,
  switchover: 2,
  "kill-all": 1,
  "isolate-primary": 3,
  "isolate-secondary": 2,
  bridge: 2,
  "deaf-primary": 2,
};

export interface FaultRecord {
  readonly kind: FaultKind;
  readonly targets: readonly string[];
  /** performance.now() when the fault began. */
  readonly atMs: number;
  /** What happened, when it is not just "done" (a refused switchover, no primary to hit). */
  readonly note: string;
}

export interface UnexpectedExit {
  readonly name: string;
  readonly exit: { code: number | null; signal: NodeJS.Signals | null };
  readonly outputTail: readonly string[];
}

export class FaultInjector {
  readonly faults: FaultRecord[] = [];
  readonly unexpectedExits: UnexpectedExit[] = [];
  readonly #cluster: ProcessCluster;
  readonly #names: readonly string[];
  readonly #prng: Prng;
  readonly #log: (line: string) => void;
  /** Where network cuts are made; null: no network faults. */
  readonly #lab: NetworkLab | null;
  /** PIDs this injector killed: their exits are expected. */
  readonly #killed = new Set<number>();

  constructor(
    cluster: ProcessCluster,
    names: readonly string[],
    seed: number,
    log: (line: string) => void,
    lab: NetworkLab | null = null,
  ) {
    this.#cluster = cluster;
    this.#names = names;
    this.#prng = new Prng(seed);
    this.#log = log;
    this.#lab = lab;
  }

  /** Injects faults until `deadlineMs` (performance.now()), then heals the cluster. */
  async run(deadlineMs: number): Promise<void> {
    while (performance.now() < deadlineMs) {
      await delay(3_000 + this.#prng.nextInt(4_001));
      await this.#restartUnexpectedExits();
      if (performance.now() >= deadlineMs) break;
      const kind = this.#draw();
      const record = await this.#inject(kind);
      this.faults.push(record);
      this.#log(`fault ${this.faults.length}: ${kind} ${record.targets.join(",")} ${record.note}`.trimEnd());
    }
    await this.heal();
  }

  /** Resumes paused nodes, removes network cuts and restarts stopped ones. */
  async heal(): Promise<void> {
    this.#lab?.heal();
    for (const name of this.#names) {
      const node = this.#cluster.processes.get(name);
      if (node !== undefined && node.exit === null) this.#cluster.signal(name, "SIGCONT");
    }
    await this.#restartUnexpectedExits();
  }

  #draw(): FaultKind {
    const kinds = faultKinds.filter((kind) => this.#lab !== null || !networkFaults.has(kind));
    const total = kinds.reduce((sum, kind) => sum + weights[kind], 0);
    let roll = this.#prng.nextInt(total);
    for (const kind of kinds) {
      roll -= weights[kind];
      if (roll < 0) return kind;
    }
    return "kill-primary";
  }

  async #inject(kind: FaultKind): Promise<FaultRecord> {
    const atMs = performance.now();
    const primary = await believedPrimary(this.#cluster, this.#names);
    const secondaries = this.#names.filter((name) => name !== primary);
    const done = (targets: readonly string[], note = ""): FaultRecord => ({ kind, targets, atMs, note });
    const needsPrimary = kind !== "kill-all" && kind !== "kill-secondary" && kind !== "pause-secondary";
    if (primary === null && needsPrimary && kind !== "isolate-secondary") {
      return done([], "(no primary to hit: skipped)");
    }
    switch (kind) {
      case "kill-primary":
        await this.#killAndRestart([primary as string]);
        return done([primary as string]);
      case "kill-secondary": {
        const target = this.#prng.pick(secondaries);
        await this.#killAndRestart([target]);
        return done([target]);
      }
      case "pause-primary":
      case "pause-secondary": {
        const target = kind === "pause-primary" ? (primary as string) : this.#prng.pick(secondaries);
        const pauseMs = 1_000 + this.#prng.nextInt(3_001);
        this.#cluster.signal(target, "SIGSTOP");
        await delay(pauseMs);
        this.#cluster.signal(target, "SIGCONT");
        return done([target], `(${pauseMs} ms)`);
      }
      case "switchover": {
        const target = this.#prng.pick(secondaries);
        const note = await this.#switchover(primary as string, target);
        return done([target], note);
      }
      case "kill-all":
        await this.#killAndRestart(this.#names);
        return done(this.#names);
      case "isolate-primary":
      case "isolate-secondary":
      case "bridge":
      case "deaf-primary": {
        const lab = this.#lab;
        if (lab === null) return done([], "(no network lab: skipped)");
        const target = kind === "isolate-secondary" ? this.#prng.pick(secondaries) : (primary as string);
        const others = this.#names.filter((name) => name !== target);
        const targets = [target];
        if (kind === "bridge") {
          const cutOff = this.#prng.pick(others);
          lab.partition([target], [cutOff]);
          targets.push(cutOff);
        } else if (kind === "deaf-primary") {
          for (const other of others) lab.cut(other, target);
        } else {
          lab.partition([target], others);
        }
        const holdMs = 2_000 + this.#prng.nextInt(4_001);
        await delay(holdMs);
        lab.heal();
        return done(targets, `(${holdMs} ms)`);
      }
    }
  }

  async #killAndRestart(names: readonly string[]): Promise<void> {
    for (const name of names) {
      const node = this.#cluster.node(name);
      if (node.child.pid !== undefined) this.#killed.add(node.child.pid);
      this.#cluster.signal(name, "SIGCONT");
      this.#cluster.signal(name, "SIGKILL");
    }
    await Promise.all(names.map((name) => this.#cluster.node(name).exited));
    await delay(500 + this.#prng.nextInt(1_501));
    const order = [...names];
    for (let at = order.length - 1; at > 0; at--) {
      const other = this.#prng.nextInt(at + 1);
      [order[at], order[other]] = [order[other] as string, order[at] as string];
    }
    for (const name of order) await restart(this.#cluster, name);
  }

  /** POST /v1/cluster/set-primary on the primary; a refusal is a note, not a failure of the run. */
  async #switchover(primary: string, target: string): Promise<string> {
    try {
      const response = await authorizedFetch(`${this.#cluster.url(primary)}/v1/cluster/set-primary`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ member: target }),
        signal: AbortSignal.timeout(10_000),
      });
      const body = await response.text();
      return response.ok ? "" : `(refused: ${response.status} ${body.slice(0, 120)})`;
    } catch (error) {
      return `(no answer: ${String(error).slice(0, 120)})`;
    }
  }

  /** Records and restarts every node that exited without being killed here. */
  async #restartUnexpectedExits(): Promise<void> {
    for (const name of this.#names) {
      const node = this.#cluster.processes.get(name);
      if (node === undefined || node.exit === null) continue;
      if (node.child.pid !== undefined && this.#killed.has(node.child.pid)) continue;
      this.unexpectedExits.push({ name, exit: node.exit, outputTail: node.output.slice(-20) });
      this.#log(`${name} exited by itself (${JSON.stringify(node.exit)}); restarting it`);
      await restart(this.#cluster, name);
    }
  }
}

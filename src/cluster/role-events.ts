/**
 * Role events for an embedding application, derived from the runtime's `role-changed`:
 * `primary` when this node becomes the primary, `secondary` when it becomes a follower that knows
 * a primary, `role-changed` on every change of role, term or known primary, `fatal` when the
 * node stopped itself. And `onPrimary(fn)`: runs `fn(signal)` each time this node becomes the
 * primary, aborting `signal` as soon as it stops being the primary (or the node stops).
 *
 * Leader-only work and its limit: a primary cut off from the others learns it was deposed only
 * when check-quorum steps it down (about one election timeout), so for a short time two nodes may
 * both run `fn`. Work that must never overlap takes a lock (locks.ts) and fences its effects
 * with the lock's revision.
 *
 * @example
 * ```ts
 * const roles = new RoleEvents(runtime, logger);
 * roles.on("primary", () => console.log("now primary"));
 * roles.onPrimary(async (signal) => { while (!signal.aborted) await tick(signal); });
 * ```
 */
import { ConclaveError } from "../lib/errors.ts";
import type { Logger } from "../ports/logger.ts";
import type { RaftRuntime } from "../runtime/raft-runtime.ts";
import type { RuntimeEvents } from "../runtime/runtime-events.ts";

/** The events of an embedded node and their payloads. */
export interface ConclaveEvents {
  /** This node became the primary. */
  primary: { readonly term: number };
  /** This node became a secondary of `leader`. */
  secondary: { readonly term: number; readonly leader: string };
  "role-changed": RuntimeEvents["role-changed"];
  fatal: RuntimeEvents["fatal"];
}

type Listener<K extends keyof ConclaveEvents> = (event: ConclaveEvents[K]) => void;
type Standing = "primary" | "secondary" | "none";

export class RoleEvents {
  readonly #logger: Logger;
  readonly #listeners: { [K in keyof ConclaveEvents]: Set<Listener<K>> } = {
    primary: new Set(),
    secondary: new Set(),
    "role-changed": new Set(),
    fatal: new Set(),
  };
  readonly #primaryWork = new Set<{
    run: (signal: AbortSignal) => unknown;
    running: AbortController | null;
  }>();
  readonly #unsubscribe: (() => void)[];
  #standing: Standing = "none";
  #term = 0;
  #stopped = false;

  constructor(runtime: Pick<RaftRuntime, "on">, logger: Logger) {
    this.#logger = logger;
    this.#unsubscribe = [
      runtime.on("role-changed", (event) => this.#roleChanged(event)),
      runtime.on("fatal", (event) => {
        this.#emit("fatal", event);
        this.stop();
      }),
    ];
  }

  /** Adds a listener; returns its remover. Listeners must not throw. */
  on<K extends keyof ConclaveEvents>(name: K, listener: Listener<K>): () => void {
    const set = this.#listeners[name] as Set<Listener<K>>;
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Runs `run(signal)` while this node is the primary (see the module comment); returns a remover. */
  onPrimary(run: (signal: AbortSignal) => unknown): () => void {
    const work = { run, running: null as AbortController | null };
    this.#primaryWork.add(work);
    if (this.#standing === "primary") this.#startWork(work);
    return () => {
      this.#primaryWork.delete(work);
      work.running?.abort(stoppedReason("the work was removed"));
      work.running = null;
    };
  }

  /** True while this node is the primary (as of the last role change). */
  get isPrimary(): boolean {
    return this.#standing === "primary";
  }

  /** Aborts running work and stops listening (the node stopped). */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const remove of this.#unsubscribe) remove();
    this.#standing = "none";
    for (const work of this.#primaryWork) {
      work.running?.abort(stoppedReason("the node stopped"));
      work.running = null;
    }
  }

  #roleChanged(event: RuntimeEvents["role-changed"]): void {
    if (this.#stopped) return;
    const standing: Standing =
      event.role === "leader"
        ? "primary"
        : event.role === "follower" && event.leader !== null
          ? "secondary"
          : "none";
    const changed = standing !== this.#standing || event.term !== this.#term;
    const wasPrimary = this.#standing === "primary";
    this.#standing = standing;
    this.#term = event.term;
    if (wasPrimary && standing !== "primary") {
      for (const work of this.#primaryWork) {
        work.running?.abort(stoppedReason(`this node is no longer the primary (term ${event.term})`));
        work.running = null;
      }
    }
    this.#emit("role-changed", event);
    if (!changed) return;
    if (standing === "primary" && !wasPrimary) {
      this.#emit("primary", { term: event.term });
      for (const work of this.#primaryWork) this.#startWork(work);
    } else if (standing === "secondary" && event.leader !== null) {
      this.#emit("secondary", { term: event.term, leader: event.leader });
    }
  }

  #startWork(work: { run: (signal: AbortSignal) => unknown; running: AbortController | null }): void {
    const controller = new AbortController();
    work.running = controller;
    Promise.resolve()
      .then(() => work.run(controller.signal))
      .catch((error: unknown) => {
        // An abort is how the work is told to stop: not worth a warning.
        if (controller.signal.aborted) return;
        this.#logger.warn(
          { error: String(error) },
          "onPrimary work failed; it runs again next time this node becomes primary",
        );
      })
      .finally(() => {
        if (work.running === controller) work.running = null;
      });
  }

  #emit<K extends keyof ConclaveEvents>(name: K, event: ConclaveEvents[K]): void {
    for (const listener of this.#listeners[name] as Set<Listener<K>>) listener(event);
  }
}

function stoppedReason(why: string): ConclaveError {
  return new ConclaveError("CONCLAVE_NOT_PRIMARY", `Leader-only work stopped: ${why}.`);
}

/** A small typed event emitter for the runtime's events (no node:events: the runtime depends on ports only). */
import type { NodeId, Role } from "../raft/types.ts";

/** The runtime's events and their payloads. */
export interface RuntimeEvents {
  /** The node's role, term or known leader changed. */
  "role-changed": { readonly role: Role; readonly term: number; readonly leader: NodeId | null };
  /** The runtime stopped itself (storage failure, broken invariant): the process should exit non-zero. */
  fatal: { readonly error: Error };
}

type Listener<K extends keyof RuntimeEvents> = (event: RuntimeEvents[K]) => void;

export class RuntimeEmitter {
  readonly #listeners: { [K in keyof RuntimeEvents]: Set<Listener<K>> } = {
    "role-changed": new Set(),
    fatal: new Set(),
  };

  /** Adds a listener; returns a function that removes it. Listeners must not throw. */
  on<K extends keyof RuntimeEvents>(name: K, listener: Listener<K>): () => void {
    const set = this.#listeners[name] as Set<Listener<K>>;
    set.add(listener);
    return () => set.delete(listener);
  }

  emit<K extends keyof RuntimeEvents>(name: K, event: RuntimeEvents[K]): void {
    for (const listener of this.#listeners[name] as Set<Listener<K>>) listener(event);
  }
}

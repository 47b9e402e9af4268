/**
 * The simulator's state machine: a small key-value store whose commands are JSON in the log.
 * Deterministic by construction; snapshots are its JSON bytes.
 */
import type { KvInput, KvOutput } from "./linearizability/kv-model.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface LoggedCommand {
  readonly client: number;
  readonly opId: number;
  readonly command: KvInput;
}

export function encodeCommand(command: LoggedCommand): Uint8Array {
  return encoder.encode(JSON.stringify(command));
}

export function decodeCommand(data: Uint8Array): LoggedCommand {
  return JSON.parse(decoder.decode(data)) as LoggedCommand;
}

export class KvMachine {
  #data = new Map<string, string>();

  apply(command: KvInput): KvOutput {
    switch (command.op) {
      case "put":
        this.#data.set(command.key, command.value);
        return { op: "put" };
      case "delete":
        return { op: "delete", existed: this.#data.delete(command.key) };
      case "cas": {
        const current = this.#data.get(command.key) ?? null;
        if (current !== command.expected) return { op: "cas", ok: false };
        this.#data.set(command.key, command.value);
        return { op: "cas", ok: true };
      }
      case "get":
        return { op: "get", value: this.#data.get(command.key) ?? null };
    }
  }

  read(key: string): string | null {
    return this.#data.get(key) ?? null;
  }

  snapshot(): Uint8Array {
    return encoder.encode(JSON.stringify([...this.#data].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
  }

  restore(bytes: Uint8Array): void {
    this.#data = new Map(JSON.parse(decoder.decode(bytes)) as [string, string][]);
  }
}

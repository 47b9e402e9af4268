/**
 * Prepared statements of one connection, prepared once per SQL text. Each table module keeps
 * one and re-attaches it when a snapshot restore opens a new connection.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";

export class StatementCache {
  #db: DatabaseSync;
  #statements = new Map<string, StatementSync>();

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /** Uses a new connection (the old one's statements are dropped). */
  attach(db: DatabaseSync): void {
    this.#db = db;
    this.#statements = new Map();
  }

  /** The prepared statement for `text`. */
  get(text: string): StatementSync {
    let statement = this.#statements.get(text);
    if (statement === undefined) {
      statement = this.#db.prepare(text);
      this.#statements.set(text, statement);
    }
    return statement;
  }
}

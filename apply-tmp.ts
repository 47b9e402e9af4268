import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteStateMachine } from "./src/adapters/sqlite/sqlite-state-machine.ts";
import { encodeCommand } from "./src/adapters/sqlite/commands.ts";
const m = new SqliteStateMachine({ dataDir: mkdtempSync(join(tmpdir(), "apply-")), applyCommitIntervalMs: 100 });
const value = new Uint8Array(100).fill(7);
let index = m.appliedIndex;
function one(i: number): number {
  const data = encodeCommand({ kind: "kv", op: "put", key: `b/r1/seq/k${i}`, value });
  m.beginBatch(); const s = performance.now(); m.apply(data, ++index); m.endBatch(); const t = performance.now() - s;
  m.flushIfDue();
  return t;
}
for (let i = 0; i < 20000; i++) one(i);
const ts: number[] = [];
for (let i = 20000; i < 30000; i++) ts.push(one(i));
ts.sort((a, b) => a - b);
console.log("apply put µs p50", (ts[5000]! * 1000).toFixed(1), "p90", (ts[9000]! * 1000).toFixed(1), "p99", (ts[9900]! * 1000).toFixed(1));

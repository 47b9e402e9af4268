/**
 * `node bench/request-steps.ts LOG…`: where requests spent their time, from nodes' logs with
 * `log.slow_request_ms = 0` (or any slow-request lines): a table per kind of request of each
 * step's median time (bench/compare/request-steps.ts).
 */
import { readFileSync } from "node:fs";
import { slowRequestLines, summarizeRequestSteps } from "./compare/request-steps.ts";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error(
    "usage: node bench/request-steps.ts LOG… (pino JSON logs of nodes with log.slow_request_ms = 0)",
  );
  process.exit(2);
}
console.log(summarizeRequestSteps(files.flatMap((file) => slowRequestLines(readFileSync(file, "utf8")))));

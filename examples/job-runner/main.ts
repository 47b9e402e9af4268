/**
 * A tiny service that embeds a Conclave node: it keeps a replicated table of job runs, runs a
 * periodic job only on the primary (`onPrimary`), and logs what it sees. Start three of them on
 * one machine (examples/README.md): kill the primary and the job moves to another node; the
 * history of runs survives, because it lives in the replicated database.
 *
 * Configuration comes from the environment (`NODE`: n1, n2 or n3; `COOKIE`: the shared secret),
 * so the three processes differ only in NODE.
 *
 * @example
 * ```sh
 * COOKIE=$(node bin/conclave.js cookie) NODE=n1 node scripts/node24.mjs examples/job-runner/main.ts
 * ```
 */
import { setTimeout as sleep } from "node:timers/promises";
import { createConclave, isConclaveError } from "../../src/index.ts";

const members = ["n1@127.0.0.1:4401", "n2@127.0.0.1:4402", "n3@127.0.0.1:4403"];
const createRuns = "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, node TEXT, at TEXT)";
/** How often the primary runs the job. */
const jobIntervalMs = 2000;

const node = process.env.NODE ?? "n1";
const index = Number(node.replace(/^n/, ""));
const cookie = process.env.COOKIE;
if (cookie === undefined || !members.some((member) => member.startsWith(`${node}@`))) {
  console.error("set NODE to n1, n2 or n3 and COOKIE to a shared secret (see examples/README.md)");
  process.exit(2);
}

const conclave = await createConclave({
  overrides: {
    node: { name: `${node}@127.0.0.1`, data_dir: `.job-runner/${node}` },
    cluster: { cookie, members, port: 4400 + index, bind: "127.0.0.1" },
    http: { port: 4410 + index, bind: "127.0.0.1" },
    log: { level: "warn" },
  },
});

conclave.on("primary", ({ term }) => console.log(`${node}: primary (term ${term})`));
conclave.on("secondary", ({ leader }) => console.log(`${node}: secondary of ${leader}`));
conclave.on("fatal", ({ error }) => {
  console.error(`${node}: fatal: ${error.message}`);
  process.exit(1);
});

// Leader-only work: runs while this node is the primary, stops as soon as it is not.
conclave.onPrimary(async (signal) => {
  await conclave.db.execute([{ sql: createRuns }], { signal });
  while (!signal.aborted) {
    try {
      const { results } = await conclave.db.execute(
        [{ sql: "INSERT INTO runs (node, at) VALUES (?, CURRENT_TIMESTAMP)", params: [node] }],
        { signal },
      );
      console.log(`${node}: ran the job (run #${String(results[0]?.lastInsertRowid)})`);
    } catch (error) {
      if (!isConclaveError(error)) throw error;
      console.log(`${node}: job not recorded (${error.code}); retrying next time`);
    }
    await sleep(jobIntervalMs, undefined, { signal }).catch(() => {});
  }
});

await conclave.start();
// Any member may write: a secondary forwards the write to the primary.
await retry(() => conclave.db.execute([{ sql: createRuns }]));
const { rows } = await retry(() => conclave.db.query("SELECT count(*) AS runs FROM runs"));
console.log(`${node}: up; ${String(rows[0]?.runs)} runs recorded so far`);

process.once("SIGINT", () => void conclave.stop().then(() => process.exit(0)));
process.once("SIGTERM", () => void conclave.stop().then(() => process.exit(0)));

/** Retries while the cluster has no primary yet (a few seconds at most). */
async function retry<T>(operation: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      if (attempt >= 30 || !isConclaveError(error, "CONCLAVE_NOT_PRIMARY")) throw error;
      await sleep(200);
    }
  }
}

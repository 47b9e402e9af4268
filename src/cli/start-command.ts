/**
 * `conclave start --config FILE`: runs a node until SIGTERM or SIGINT, then shuts down cleanly
 * (the in-flight fsync finishes, connections close) and exits 0. A fatal error (storage failure)
 * exits non-zero. Startup errors (bad config, weak cookie, identity mismatch, port in use,
 * corrupt storage) are `ConclaveError`s: main.ts prints them as one plain line.
 */
import { flushCompileCache } from "node:module";
import type { Command } from "commander";
import { ConclaveError } from "../lib/errors.ts";
import { useBatchScheduling } from "./cpu-scheduling.ts";

type Outcome = { signal: string } | { fatal: Error };

export function registerStartCommand(program: Command): void {
  program
    .command("start")
    .description("run a node until SIGTERM or SIGINT")
    .option("-c, --config <file>", "the node's TOML configuration file (see examples/conclave.toml)")
    .action(async (options: { config?: string }) => {
      // The signal handlers come first: a SIGTERM that arrives while the node is still starting
      // (opening storage, replaying its log) would otherwise end the process at once, leaving
      // its data-directory LOCK behind and an fsync possibly half done. Such a signal is kept,
      // and the node stops as soon as it has started.
      let onOutcome: (outcome: Outcome) => void = () => {};
      const outcome = new Promise<Outcome>((resolve) => {
        onOutcome = resolve;
      });
      const onSignal = (signal: string): void => onOutcome({ signal });
      process.once("SIGTERM", onSignal);
      process.once("SIGINT", onSignal);
      // The node's code (config schemas, SQLite, HTTP server, transport) is loaded here, not when
      // the CLI starts: every other command (status, kv, sql, cluster …) starts without it, in
      // about a third of the time (src/cli/DESIGN.md).
      const [{ loadConfig }, { createNode }] = await Promise.all([
        import("../config/load.ts"),
        import("../index.ts"),
      ]);
      const config = await loadConfig(options.config === undefined ? {} : { file: options.config });
      // Before the node starts its work: the threads it starts later inherit the policy.
      const scheduling = config.node.cpuScheduling === "batch" ? useBatchScheduling(process.pid) : null;
      const node = await createNode(config);
      if (scheduling?.ok === true) node.logger.info({ cpuScheduling: "batch" }, "running under SCHED_BATCH");
      else if (scheduling?.ok === false)
        node.logger.warn(
          { cpuScheduling: "batch", reason: scheduling.reason },
          "could not put the server under SCHED_BATCH (node.cpu_scheduling); it runs with the policy it was started with",
        );
      node.on("fatal", ({ error }) => onOutcome({ fatal: error }));
      await node.start();
      // Node writes the compile cache (bin/conclave.js) at exit; a member stopped by SIGKILL
      // never exits, so write it now that every module of a running node is loaded.
      flushCompileCache();
      const result = await outcome;
      await node.stop();
      if ("fatal" in result) {
        const code = (result.fatal as Partial<ConclaveError>).code ?? "CONCLAVE_FATAL";
        throw new ConclaveError(code, `the node stopped: ${result.fatal.message}`);
      }
    });
}

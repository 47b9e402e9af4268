/**
 * The operator's cluster commands, each one call to a node's HTTP API (admin-request.ts):
 * `status [--json] [--watch]`, `node`, `join <name@host[:port]>`, `leave [--force]`,
 * `force-leave <member> [--force]`, `set-primary <member>`, `assume-primary`, `settings`.
 */
import type { Command } from "commander";
import type { ClusterStatusView, MemberStatusRow } from "../index.ts";
import { ConclaveError } from "../lib/errors.ts";
import { type AdminTarget, adminEndpointDefault, adminRequest, resolveToken } from "./admin-request.ts";

interface CommonOptions {
  endpoint: string;
  token?: string;
  tokenFile?: string;
}

function withCommonOptions(command: Command): Command {
  return command
    .option("--endpoint <url>", "the node's HTTP API", adminEndpointDefault)
    .option("--token <token>", "the API token (default: CONCLAVE_TOKEN)")
    .option("--token-file <path>", "a file holding the API token (e.g. <data_dir>/admin-token)");
}

function targetOf(options: CommonOptions): AdminTarget {
  return { endpoint: options.endpoint, token: resolveToken(options) };
}

const print = (text: string): void => {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
};

export function registerClusterCommands(program: Command): void {
  withCommonOptions(
    program.command("status").description("the cluster's members and facts, as this node sees them"),
  )
    .option("--json", "print JSON")
    .option("--watch", "refresh every second until Ctrl-C")
    .action(async (options: CommonOptions & { json?: boolean; watch?: boolean }) => {
      const target = targetOf(options);
      const show = async (): Promise<string> => {
        const view = (await adminRequest(
          target,
          "GET",
          "/v1/cluster/status",
        )) as unknown as ClusterStatusView;
        return options.json ? `${JSON.stringify(view)}\n` : formatClusterStatus(view);
      };
      if (!options.watch) return print(await show());
      for (;;) {
        const text = await show().catch(
          (error: unknown) => `${error instanceof Error ? error.message : String(error)}\n`,
        );
        process.stdout.write(`\x1b[H\x1b[2J${new Date().toISOString()}  (Ctrl-C to stop)\n${text}`);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    });

  withCommonOptions(
    program
      .command("node")
      .description("this node's own subsystems: storage, transport peers, apply lag, disk use"),
  ).action(async (options: CommonOptions) => {
    print(JSON.stringify(await adminRequest(targetOf(options), "GET", "/v1/node"), null, 2));
  });

  withCommonOptions(
    program.command("join").description("join the cluster that <member> belongs to (run on the new node)"),
  )
    .argument("<member>", "a member of the cluster, name@host or name@host:port")
    .option("--timeout-ms <ms>", "how long to wait for the cluster's answer", "30000")
    .action(async (member: string, options: CommonOptions & { timeoutMs: string }) => {
      const timeoutMs = Number(options.timeoutMs);
      if (!Number.isInteger(timeoutMs) || timeoutMs < 1000 || timeoutMs > 300_000) {
        throw new ConclaveError("CONCLAVE_USAGE", "--timeout-ms must be a whole number from 1000 to 300000");
      }
      const answer = await adminRequest(
        targetOf(options),
        "POST",
        "/v1/cluster/join",
        { target: member, timeoutMs },
        timeoutMs + 5000,
      );
      print(
        `joined the cluster of ${String(answer.joined)}; this node now receives the primary's snapshot and catches up (see \`conclave status\`)`,
      );
    });

  withCommonOptions(
    program.command("leave").description("this node leaves its cluster (run on the node that leaves)"),
  )
    .option("--force", "leave even if the remaining reachable voters could not form a quorum")
    .action(async (options: CommonOptions & { force?: boolean }) => {
      const answer = await adminRequest(targetOf(options), "POST", "/v1/cluster/leave", {
        force: options.force === true,
      });
      print(`${String(answer.leaving)} is leaving; the primary removes it from the membership`);
    });

  withCommonOptions(
    program.command("force-leave").description("remove a member (usually one that is down) from the cluster"),
  )
    .argument("<member>", "the member, name or name@host")
    .option("--force", "remove it even if the remaining reachable voters could not form a quorum")
    .action(async (member: string, options: CommonOptions & { force?: boolean }) => {
      const answer = await adminRequest(targetOf(options), "POST", "/v1/cluster/force-leave", {
        member,
        force: options.force === true,
      });
      print(
        `${String(answer.removing)} is being removed; it cannot come back under its old identity until its data directory is wiped`,
      );
    });

  withCommonOptions(
    program.command("set-primary").description("hand the primary role to <member> (a planned switchover)"),
  )
    .argument("<member>", "the member, name or name@host")
    .action(async (member: string, options: CommonOptions) => {
      const answer = await adminRequest(targetOf(options), "POST", "/v1/cluster/set-primary", { member });
      print(`${String(answer.primary)} is primary (switchover took ${String(answer.durationMs)} ms)`);
    });

  withCommonOptions(program.command("settings").description("show or change the cluster-wide settings"))
    .option(
      "--sync-timeout-ms <ms>",
      "how long a write waits for its quorum before the client is told the outcome is unknown (100–600000)",
    )
    .option(
      "--recovery-message <text>",
      "a message shown in status while the cluster is in trouble (empty to clear)",
    )
    .action(async (options: CommonOptions & { syncTimeoutMs?: string; recoveryMessage?: string }) => {
      const change: Record<string, unknown> = {};
      if (options.syncTimeoutMs !== undefined) {
        const value = Number(options.syncTimeoutMs);
        if (!Number.isInteger(value) || value < 100 || value > 600_000) {
          throw new ConclaveError(
            "CONCLAVE_USAGE",
            "--sync-timeout-ms must be a whole number from 100 to 600000",
          );
        }
        change.syncTimeoutMs = value;
      }
      if (options.recoveryMessage !== undefined) change.recoveryMessage = options.recoveryMessage;
      const target = targetOf(options);
      const answer =
        Object.keys(change).length === 0
          ? await adminRequest(target, "GET", "/v1/cluster/settings")
          : await adminRequest(target, "POST", "/v1/cluster/settings", change);
      print(JSON.stringify(answer, null, 2));
    });

  withCommonOptions(
    program.command("assume-primary").description("make the node at --endpoint the primary"),
  ).action(async (options: CommonOptions) => {
    const answer = await adminRequest(targetOf(options), "POST", "/v1/cluster/assume-primary", {});
    print(`${String(answer.primary)} is primary (switchover took ${String(answer.durationMs)} ms)`);
  });
}

/** The status view as text: the cluster's facts, then one line per member. */
export function formatClusterStatus(view: ClusterStatusView): string {
  const survives = `survives ${view.failuresTolerated} failure${view.failuresTolerated === 1 ? "" : "s"}`;
  const lines = [
    `primary: ${view.primary ?? "(none)"}   term: ${view.term}   voters: ${view.voters}   quorum: ${view.quorum}   ${survives}`,
  ];
  const header = ["NODE", "ROLE", "STATE", "APPLIED", "LAG", "CONTACT", "CLOCK"];
  const cells = view.members.map((row) => memberCells(row));
  const widths = header.map((title, column) =>
    Math.max(title.length, ...cells.map((cell) => (cell[column] ?? "").length)),
  );
  const line = (values: readonly string[]) =>
    values
      .map((value, column) => value.padEnd(widths[column] ?? 0))
      .join("  ")
      .trimEnd();
  lines.push(line(header), ...cells.map(line));
  for (const warning of view.warnings) lines.push(`warning: ${warning}`);
  const troubled =
    view.primary === null || view.members.some((row) => row.state === "RECOVERY" || row.state === "DOWN");
  if (troubled && view.recoveryMessage !== null) lines.push(`recovery message: ${view.recoveryMessage}`);
  return `${lines.join("\n")}\n`;
}

function memberCells(row: MemberStatusRow): string[] {
  const contact = row.self
    ? "self"
    : row.lastContactAgoMs === null
      ? "never"
      : `${(row.lastContactAgoMs / 1000).toFixed(1)}s ago`;
  const clock = row.self
    ? "-"
    : row.clockOffsetMs === null
      ? "?"
      : `${row.clockOffsetMs >= 0 ? "+" : ""}${Math.round(row.clockOffsetMs)}ms${row.clockWarning ? " (!)" : ""}`;
  const role = `${row.role}${row.neverPrimary ? ",never-primary" : ""}`;
  return [
    `${row.name}${row.self ? " *" : ""}`,
    role,
    row.state,
    row.applied === null ? "?" : String(row.applied),
    row.lag === null ? "?" : String(row.lag),
    contact,
    clock,
  ];
}

/**
 * `conclave sql "<statement>" [--json] [--consistency LEVEL] [--endpoint URL]…`: runs one
 * statement through the HTTP API client. A statement that returns rows (SELECT, WITH, VALUES,
 * PRAGMA, EXPLAIN) is a query printed as a table (or JSON); anything else is executed through the
 * log and prints the rows changed. Errors are one plain line and exit 1 (main.ts).
 */
import type { Command } from "commander";
import { ConclaveClient, type Consistency, type SqlValue } from "../client/index.ts";
import { ConclaveError } from "../lib/errors.ts";
import { resolveToken } from "./admin-request.ts";

/** The HTTP API of a node started with the defaults. */
export const endpointDefault = "http://127.0.0.1:4380";
const consistencies: readonly string[] = ["none", "weak", "linearizable", "strong"];
const readWords = /^\s*(SELECT|WITH|VALUES|PRAGMA|EXPLAIN)\b/i;

/** Collects repeated `--endpoint` flags. */
export function collectEndpoint(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** A client over the `--endpoint` flags (default: the local node). */
export function clientFor(
  endpoints: readonly string[] | undefined,
  tokenOptions: { token?: string; tokenFile?: string } = {},
  timeoutMs = 10_000,
): ConclaveClient {
  const token = resolveToken(tokenOptions);
  return new ConclaveClient({
    endpoints: endpoints?.length ? endpoints : [endpointDefault],
    timeoutMs,
    ...(token === undefined ? {} : { token }),
  });
}

function cellText(value: SqlValue): string {
  if (value === null) return "NULL";
  if (value instanceof Uint8Array) return `x'${Buffer.from(value).toString("hex")}'`;
  return String(value);
}

/** Rows as an aligned text table, columns in the order of the first row. */
export function formatRows(rows: readonly Record<string, SqlValue>[]): string {
  const first = rows[0];
  if (first === undefined) return "(no rows)\n";
  const columns = Object.keys(first);
  const cells = rows.map((row) => columns.map((column) => cellText(row[column] ?? null)));
  const widths = columns.map((column, at) =>
    Math.max(column.length, ...cells.map((line) => (line[at] ?? "").length)),
  );
  const format = (line: readonly string[]): string =>
    line
      .map((cell, at) => cell.padEnd(widths[at] ?? 0))
      .join("  ")
      .trimEnd();
  return `${[format(columns), ...cells.map(format)].join("\n")}\n`;
}

const jsonText = (value: unknown): string =>
  `${JSON.stringify(value, (_key, inner: unknown) =>
    typeof inner === "bigint"
      ? inner.toString()
      : inner instanceof Uint8Array
        ? Buffer.from(inner).toString("base64")
        : inner,
  )}\n`;

export function registerSqlCommand(program: Command): void {
  program
    .command("sql")
    .description(
      "run one SQL statement on the cluster (SELECT prints rows; other statements go through the log)",
    )
    .argument("<statement>", "the SQL statement")
    .option("--json", "print JSON instead of a table")
    .option("--consistency <level>", "read consistency: none, weak, linearizable (default) or strong")
    .option("--endpoint <url>", `a node's HTTP API (repeatable; default ${endpointDefault})`, collectEndpoint)
    .option("--token <token>", "the API token (default: CONCLAVE_TOKEN)")
    .option("--token-file <path>", "a file holding the API token")
    .action(
      async (
        statement: string,
        options: {
          json?: boolean;
          consistency?: string;
          endpoint?: string[];
          token?: string;
          tokenFile?: string;
        },
      ) => {
        if (options.consistency !== undefined && !consistencies.includes(options.consistency)) {
          throw new ConclaveError(
            "CONCLAVE_USAGE",
            `--consistency must be one of ${consistencies.join(", ")}`,
          );
        }
        const client = clientFor(options.endpoint, options);
        if (readWords.test(statement)) {
          const consistency = (options.consistency ?? "linearizable") as Consistency;
          const { rows, truncated } = await client.sql.query(statement, [], { consistency });
          process.stdout.write(options.json ? jsonText({ rows, truncated }) : formatRows(rows));
          if (truncated && !options.json) process.stdout.write("(truncated: more rows than the limit)\n");
          return;
        }
        const [result] = await client.sql.execute([{ sql: statement }]);
        const rowsChanged = result?.rowsChanged ?? 0;
        process.stdout.write(
          options.json ? jsonText(result) : `${rowsChanged} row${rowsChanged === 1 ? "" : "s"} changed\n`,
        );
      },
    );
}

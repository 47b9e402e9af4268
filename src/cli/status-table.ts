/** A plain-text table of node states, shared by `conclave dev` and `conclave status`. */
export interface NodeStatusRow {
  readonly name: string;
  readonly state: string;
  readonly term: number;
  readonly commit: number;
  readonly applied: number;
  readonly api: string;
}

export function formatStatusTable(rows: readonly NodeStatusRow[]): string {
  const header = ["NODE", "STATE", "TERM", "COMMIT", "APPLIED", "API"];
  const cells = rows.map((row) => [
    row.name,
    row.state,
    String(row.term),
    String(row.commit),
    String(row.applied),
    row.api,
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...cells.map((cell) => (cell[column] ?? "").length)),
  );
  const line = (values: readonly string[]): string =>
    values
      .map((value, column) => value.padEnd(widths[column] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(header), ...cells.map(line)].join("\n");
}

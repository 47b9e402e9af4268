/**
 * Loads a node's configuration: the TOML file, then `CONCLAVE_*` environment overrides, then
 * programmatic overrides (each wins over the one before), validated as one.
 *
 * Every failure is a `ConclaveError` whose message a person can act on without reading the
 * code: `CONCLAVE_CONFIG_UNREADABLE` when the file cannot be read, `CONCLAVE_CONFIG_INVALID`
 * for a syntax error (file, line, column), an oversized file, or bad values (every bad key at
 * once, each with its source, its value and the fix). Never a stack trace.
 */
import { open } from "node:fs/promises";
import { parse, TomlError } from "smol-toml";
import { ConclaveError } from "../lib/errors.ts";
import { readEnvironmentOverrides } from "./environment.ts";
import type { NodeConfig } from "./node-config.ts";
import {
  type ConfigProblem,
  formatProblems,
  problemsFromIssues,
  SourceMap,
  type ValueSource,
} from "./problems.ts";
import { configSchema } from "./schema.ts";

/** Largest configuration file read. */
export const configFileBytesMax = 1024 * 1024;
/** Deepest nesting of tables and arrays accepted in the file (the schema needs 2). */
const configDepthMax = 8;

/** Where to read the configuration from. */
export interface LoadConfigOptions {
  /** A TOML file; without it only defaults, the environment and `overrides` apply. */
  readonly file?: string;
  /** Environment variables; `process.env` when omitted. Only `CONCLAVE_*` ones are read. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** A snake_case object shaped like the file (e.g. from command-line flags); wins over all. */
  readonly overrides?: object;
}

type Table = Record<string, unknown>;

function isTable(value: unknown): value is Table {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function invalid(message: string, problems: readonly ConfigProblem[] = []): ConclaveError {
  return new ConclaveError("CONCLAVE_CONFIG_INVALID", message, { problems });
}

async function readConfigText(file: string): Promise<string> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, "r");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT"
        ? "there is no such file"
        : code === "EACCES"
          ? "permission denied"
          : (code ?? "error");
    throw new ConclaveError(
      "CONCLAVE_CONFIG_UNREADABLE",
      `Cannot read the configuration file ${file}: ${why}. Check the path (see examples/conclave.toml for a starting point).`,
      { file },
    );
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw invalid(`The configuration file ${file} is not a regular file.`);
    if (stat.size > configFileBytesMax) {
      throw invalid(
        `The configuration file ${file} is ${stat.size} bytes; the limit is ${configFileBytesMax} bytes (1 MiB). A node's configuration is a few kilobytes: check that this is the right file.`,
      );
    }
    const buffer = Buffer.alloc(configFileBytesMax + 1);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    if (bytesRead > configFileBytesMax)
      throw invalid(`The configuration file ${file} grew past 1 MiB while read.`);
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(buffer.subarray(0, bytesRead));
    } catch {
      throw invalid(`The configuration file ${file} is not UTF-8 text. Save it as UTF-8.`);
    }
  } finally {
    await handle.close();
  }
}

function parseToml(text: string, file: string): Table {
  try {
    return parse(text, { unsafeKeyBehaviour: "throw", maxDepth: configDepthMax });
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    const [headline = "", ...rest] = error.message.split("\n");
    const what = headline.replace(/^Invalid TOML document: /, "");
    const excerpt = rest.join("\n").trim();
    throw invalid(
      `The configuration file ${file} is not valid TOML: line ${error.line}, column ${error.column}: ${what}.\n${excerpt}\nFix the syntax there (TOML: key = value, [section], strings in double quotes).`,
      [{ key: "", source: file, message: what }],
    );
  }
}

/** Deep-merges `source` into `target` (tables merge, anything else replaces) and records sources. */
function mergeInto(
  target: Table,
  source: Table,
  origin: ValueSource,
  path: string[],
  sources: SourceMap,
): void {
  for (const [key, value] of Object.entries(source)) {
    const keyPath = [...path, key];
    sources.set(keyPath, origin);
    const existing = target[key];
    if (isTable(value) && isTable(existing)) mergeInto(existing, value, origin, keyPath, sources);
    else target[key] = isTable(value) ? copyTable(value) : value;
  }
}

function copyTable(table: Table): Table {
  const copy: Table = Object.create(null);
  for (const [key, value] of Object.entries(table)) copy[key] = isTable(value) ? copyTable(value) : value;
  return copy;
}

/** Sets `path` in `root`, creating tables; a non-table in the way is kept so that validation reports it. */
function setAt(root: Table, path: readonly string[], value: unknown): void {
  let table = root;
  for (const part of path.slice(0, -1)) {
    const next = table[part];
    if (next === undefined) {
      const created: Table = Object.create(null);
      table[part] = created;
      table = created;
    } else if (isTable(next)) table = next;
    else return;
  }
  const last = path[path.length - 1];
  if (last !== undefined) table[last] = value;
}

/**
 * Loads and validates a node configuration.
 *
 * @example
 * ```ts
 * const config = await loadConfig({ file: "/etc/conclave/conclave.toml" });
 * config.cluster.syncTimeoutMs; // 15000 unless set
 * ```
 * @throws ConclaveError `CONCLAVE_CONFIG_UNREADABLE` or `CONCLAVE_CONFIG_INVALID`
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<NodeConfig> {
  const merged: Table = Object.create(null);
  const sources = new SourceMap();
  if (options.file !== undefined) {
    const table = parseToml(await readConfigText(options.file), options.file);
    mergeInto(merged, table, { kind: "file", file: options.file }, [], sources);
  }
  const env = readEnvironmentOverrides(options.env ?? process.env);
  for (const override of env.overrides) {
    const path =
      override.setting.section === null
        ? [override.setting.key]
        : [override.setting.section, override.setting.key];
    setAt(merged, path, override.value);
    sources.set(path, { kind: "env", envName: override.envName });
  }
  if (options.overrides !== undefined) {
    if (!isTable(options.overrides))
      throw invalid("The configuration overrides must be an object shaped like the file.");
    mergeInto(merged, options.overrides, { kind: "overrides" }, [], sources);
  }
  const envProblems = env.problems.map(
    (problem): ConfigProblem => ({ key: problem.envName, source: problem.envName, message: problem.message }),
  );
  const result = configSchema.safeParse(merged);
  const problems = [
    ...envProblems,
    ...(result.success ? [] : problemsFromIssues(result.error.issues, merged, sources)),
  ];
  if (problems.length > 0 || !result.success) throw invalid(formatProblems(problems), problems);
  return result.data;
}

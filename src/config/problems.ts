/**
 * Turns validation issues into messages a person can act on: which key, where it came from (the
 * file and key, or the environment variable), the bad value, what is wrong, and the fix.
 */
import type { z } from "zod";
import { closestName } from "./key-suggestion.ts";
import { configSectionShapes, type SettingKey, settingKeys, topLevelShape } from "./schema.ts";

/** Where a value came from. */
export type ValueSource =
  | { readonly kind: "file"; readonly file: string }
  | { readonly kind: "env"; readonly envName: string }
  | { readonly kind: "overrides" };

/** One thing wrong with the configuration. */
export interface ConfigProblem {
  /** The key as written in the file, e.g. `cluster.members[2]`. */
  readonly key: string;
  /** Where the bad value came from, in words (`/etc/conclave.toml`, `CONCLAVE_CLUSTER__PORT`). */
  readonly source: string;
  /** The whole sentence shown to the operator. */
  readonly message: string;
}

/** Keys whose values are never shown (they are secrets). */
const secretKeys = new Set(["cluster.cookie"]);
const valueShownLengthMax = 80;

const settingsByPath = new Map(settingKeys.map((setting) => [setting.path, setting]));

/** Describes a value for a message; secrets show only their length. */
export function showValue(keyPath: string, value: unknown): string {
  if (value === undefined) return "(not set)";
  if (secretKeys.has(keyPath) && typeof value === "string") return `(hidden, ${value.length} characters)`;
  let shown: string;
  try {
    shown = JSON.stringify(value) ?? String(value);
  } catch {
    shown = String(value);
  }
  return shown.length > valueShownLengthMax ? `${shown.slice(0, valueShownLengthMax)}…` : shown;
}

/** Records where every value (and every table) of the merged configuration came from. */
export class SourceMap {
  readonly #sources = new Map<string, ValueSource>();

  set(path: readonly PropertyKey[], source: ValueSource): void {
    this.#sources.set(path.map(String).join("."), source);
  }

  /** The source of `path`, or of its nearest ancestor that has one. */
  get(path: readonly PropertyKey[]): ValueSource | undefined {
    for (let length = path.length; length > 0; length--) {
      const source = this.#sources.get(path.slice(0, length).map(String).join("."));
      if (source !== undefined) return source;
    }
    return undefined;
  }
}

function describeSource(source: ValueSource | undefined): string {
  if (source === undefined) return "default";
  if (source.kind === "file") return source.file;
  if (source.kind === "env") return source.envName;
  return "overrides";
}

/** `["cluster", "members", 2]` → `cluster.members[2]`. */
function keyText(path: readonly PropertyKey[]): string {
  return path.reduce<string>((text, part) => {
    if (typeof part === "number") return `${text}[${part}]`;
    return text === "" ? String(part) : `${text}.${String(part)}`;
  }, "");
}

/** The setting a path falls under (`cluster.members[2]` → `cluster.members`). */
function settingOf(path: readonly PropertyKey[]): SettingKey | undefined {
  const named = path.filter((part): part is string => typeof part === "string");
  return settingsByPath.get(named.slice(0, 2).join(".")) ?? settingsByPath.get(named[0] ?? "");
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let current = root;
  for (const part of path) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<PropertyKey, unknown>)[part];
  }
  return current;
}

/** Valid keys of the table at `path` (top level: the sections and top-level keys). */
function validKeysAt(path: readonly PropertyKey[]): string[] {
  if (path.length === 0) return [...Object.keys(configSectionShapes), ...Object.keys(topLevelShape)];
  const shape = (configSectionShapes as Record<string, object>)[String(path[0])];
  return shape === undefined ? [] : Object.keys(shape);
}

function unknownKeyProblem(
  tablePath: readonly PropertyKey[],
  key: string,
  sources: SourceMap,
): ConfigProblem {
  const path = [...tablePath, key];
  const where = tablePath.length === 0 ? "at the top level" : `in [${keyText(tablePath)}]`;
  const valid = validKeysAt(tablePath);
  const suggestion = closestName(key, valid);
  const elsewhere = settingKeys.filter((setting) => setting.key === key && setting.path !== keyText(path));
  const hints: string[] = [];
  if (suggestion !== undefined) hints.push(`Did you mean "${suggestion}"?`);
  if (elsewhere.length > 0) {
    hints.push(
      `"${key}" is a key of ${elsewhere.map((s) => (s.section === null ? "the top level" : `[${s.section}]`)).join(" and ")}.`,
    );
  }
  hints.push(`Valid keys ${where}: ${valid.join(", ")}.`);
  const source = describeSource(sources.get(path));
  return {
    key: keyText(path),
    source,
    message: `${keyText(path)} (${source}): unknown key "${key}" ${where}. ${hints.join(" ")}`,
  };
}

/** Zod's sentence for an issue, in the form "must be …" where that reads better. */
function whatIsWrong(issue: z.core.$ZodIssue): string {
  if (issue.code === "too_big") return `must be at most ${String(issue.maximum)}`;
  if (issue.code === "too_small") return `must be at least ${String(issue.minimum)}`;
  const text = issue.message.replace(/^(Invalid input|Invalid option): /, "").replace(/\.$/, "");
  return text.charAt(0).toLowerCase() + text.slice(1);
}

function valueProblem(issue: z.core.$ZodIssue, root: unknown, sources: SourceMap): ConfigProblem {
  const key = keyText(issue.path);
  const setting = settingOf(issue.path);
  const source = sources.get(issue.path);
  const value = valueAt(root, issue.path);
  const shown = showValue(setting?.path ?? key, value);
  let subject: string;
  if (source?.kind === "env") subject = `${source.envName}=${shown} (${key})`;
  else if (value === undefined) subject = `${key} (not set)`;
  else subject = `${key} = ${shown} (${describeSource(source)})`;
  if (setting === undefined && issue.path.length === 1 && String(issue.path[0]) in configSectionShapes) {
    return {
      key,
      source: describeSource(source),
      message: `${subject}: "${key}" is a section, not a value. Write [${key}] on a line of its own and its keys below it.`,
    };
  }
  // Custom issues (names, cookies, rules between keys) carry their own fix in their message.
  if (issue.code === "custom" || setting === undefined) {
    return {
      key,
      source: describeSource(source),
      message: `${subject}: ${issue.message.replace(/\.$/, "")}.`,
    };
  }
  const orEnv = source?.kind === "env" ? "" : ` (or ${setting.envName})`;
  const fix = `Expected ${setting.help.expects}, e.g. ${setting.path} = ${setting.help.example}${orEnv}.`;
  return { key, source: describeSource(source), message: `${subject}: ${whatIsWrong(issue)}. ${fix}` };
}

/** One problem per bad value and per unknown key of a failed validation. */
export function problemsFromIssues(
  issues: readonly z.core.$ZodIssue[],
  root: unknown,
  sources: SourceMap,
): ConfigProblem[] {
  return issues.flatMap((issue) =>
    issue.code === "unrecognized_keys"
      ? issue.keys.map((key) => unknownKeyProblem(issue.path, key, sources))
      : [valueProblem(issue, root, sources)],
  );
}

/** The message of a `CONCLAVE_CONFIG_INVALID` error: one numbered line per problem. */
export function formatProblems(problems: readonly ConfigProblem[]): string {
  const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
  const lines = problems.map((problem, index) => `  ${index + 1}. ${problem.message}`);
  return `The configuration is not valid (${count}):\n${lines.join("\n")}`;
}

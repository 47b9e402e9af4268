/**
 * `CONCLAVE_*` environment overrides, the way EMQX reads `EMQX_NODE__NAME`.
 *
 * After the prefix, a double underscore separates the section from the key and a single
 * underscore stays inside the key: `CONCLAVE_CLUSTER__SYNC_TIMEOUT_MS` → `cluster.sync_timeout_ms`,
 * `CONCLAVE_PORT_OFFSET` → `port_offset`. How a value is read depends on the key it sets:
 * - text keys take the value verbatim (so a cookie or name made of digits stays text); a value in
 *   double quotes is read as a TOML string;
 * - number and boolean keys read it as a TOML value (`5000`, `15_000`, `true`);
 * - list keys read a TOML array (`["n1@a", "n2@b"]`) or, if it does not start with `[`, a
 *   comma-separated list (`n1@a,n2@b`).
 * A value the key cannot take is left as text, and validation then names the variable.
 * Empty variables count as unset (as many container tools pass unset variables as empty).
 * A `CONCLAVE_*` variable that names no key is an error with the closest valid name: a typo
 * must not be silently ignored.
 */
import { parse } from "smol-toml";
import { closestName } from "./key-suggestion.ts";
import { type SettingKey, settingKeys } from "./schema.ts";

/** The prefix of every override variable. */
export const envPrefix = "CONCLAVE_";
/** `CONCLAVE_*` variables that are not settings: the CLI's API token. */
const reservedNames: ReadonlySet<string> = new Set(["CONCLAVE_TOKEN"]);
/** Longest value read from one variable. */
export const envValueLengthMax = 64 * 1024;

/** A value from one variable, placed at its key. */
export interface EnvOverride {
  readonly envName: string;
  readonly setting: SettingKey;
  readonly value: unknown;
}

/** A variable that could not be used, with the reason and the fix. */
export interface EnvProblem {
  readonly envName: string;
  readonly message: string;
}

const settingsByEnvName = new Map(settingKeys.map((setting) => [setting.envName, setting]));
const envNames = settingKeys.map((setting) => setting.envName);

function readTomlValue(text: string): { ok: true; value: unknown } | { ok: false; message: string } {
  try {
    return { ok: true, value: parse(`value = ${text}`, { maxDepth: 4 }).value };
  } catch (error) {
    return {
      ok: false,
      message: error instanceof Error ? (error.message.split("\n")[0] ?? "") : String(error),
    };
  }
}

function readValue(
  text: string,
  setting: SettingKey,
): { ok: true; value: unknown } | { ok: false; message: string } {
  switch (setting.kind) {
    case "string": {
      if (text.length >= 2 && text.startsWith('"') && text.endsWith('"')) return readTomlValue(text);
      return { ok: true, value: text };
    }
    case "number":
    case "boolean": {
      const read = readTomlValue(text);
      const wanted = setting.kind;
      return { ok: true, value: read.ok && typeof read.value === wanted ? read.value : text };
    }
    case "array": {
      if (text.trimStart().startsWith("[")) return readTomlValue(text);
      const items = text
        .split(",")
        .map((item) => item.trim())
        .filter((item) => item !== "");
      return { ok: true, value: items };
    }
  }
}

function unknownVariable(envName: string): EnvProblem {
  const suggestion = closestName(envName, envNames);
  const hint = suggestion === undefined ? "" : ` Did you mean ${suggestion}?`;
  return {
    envName,
    message: `${envName} is not a Conclave setting.${hint} Variables are CONCLAVE_<SECTION>__<KEY> (double underscore between section and key), e.g. CONCLAVE_NODE__NAME or CONCLAVE_CLUSTER__SYNC_TIMEOUT_MS; docs/configuration.md lists them all. Unset it if it is not meant for Conclave.`,
  };
}

/**
 * Reads every `CONCLAVE_*` variable of `env`. Returns the overrides and the variables that
 * could not be used; the loader reports both together with the file's problems.
 */
export function readEnvironmentOverrides(env: Readonly<Record<string, string | undefined>>): {
  overrides: EnvOverride[];
  problems: EnvProblem[];
} {
  const overrides: EnvOverride[] = [];
  const problems: EnvProblem[] = [];
  for (const [envName, text] of Object.entries(env)) {
    if (!envName.startsWith(envPrefix) || text === undefined || text === "") continue;
    if (reservedNames.has(envName)) continue;
    const setting = settingsByEnvName.get(envName);
    if (setting === undefined) {
      problems.push(unknownVariable(envName));
      continue;
    }
    if (text.length > envValueLengthMax) {
      problems.push({
        envName,
        message: `${envName} is ${text.length} characters long; at most ${envValueLengthMax}`,
      });
      continue;
    }
    const read = readValue(text, setting);
    if (read.ok) overrides.push({ envName, setting, value: read.value });
    else {
      problems.push({
        envName,
        message: `${envName} is not a valid TOML value (${read.message}). Expected ${setting.help.expects}, e.g. ${envName}=${setting.help.example}`,
      });
    }
  }
  return { overrides, problems };
}

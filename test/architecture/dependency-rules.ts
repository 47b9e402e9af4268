/**
 * The dependency direction of src/, as data, and a checker for it. See docs/ARCHITECTURE.md.
 *
 * Each top-level module of src/ (a folder, or a root file such as conclave.ts) may import only
 * the modules listed for it. Two further rules:
 * - the consensus core (src/raft) and src/lib are pure: no `node:*`, no npm packages, and in
 *   src/raft no wall clock, no Math.random, no timers and no `await`;
 * - only the composition root (src/conclave.ts) picks concrete adapters (src/adapters,
 *   src/discovery).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

const everyInnerLayer = ["lib", "raft", "ports"];

/** module → modules it may import (itself always allowed). */
export const allowedImports: Record<string, readonly string[]> = {
  lib: [],
  raft: ["lib"],
  ports: ["lib", "raft"],
  runtime: [...everyInnerLayer],
  sim: [...everyInnerLayer, "runtime"],
  config: ["lib"],
  adapters: [...everyInnerLayer, "config"],
  discovery: [...everyInnerLayer, "config"],
  cluster: [...everyInnerLayer, "runtime", "config"],
  "file-sync": [...everyInnerLayer, "config"],
  admin: [...everyInnerLayer, "runtime", "cluster", "config", "file-sync"],
  client: ["lib"],
  cli: ["lib", "config", "client", "index.ts", "conclave.ts", "sim"],
  "conclave.ts": ["*"],
  "index.ts": ["*"],
};

/** Modules that must not import node built-ins or npm packages. */
const pureModules = new Set(["lib", "raft"]);
/** Modules holding concrete implementations that only the composition root may import. */
const concreteModules = new Set(["adapters", "discovery"]);
const compositionRoot = "conclave.ts";

/** Source constructs the consensus core must not use: it is driven by ticks and a seeded prng. */
const forbiddenInRaft: ReadonlyArray<[RegExp, string]> = [
  [/\bDate\b/, "the wall clock (Date): time reaches the core as ticks"],
  [/\bperformance\s*\.\s*now\b/, "the wall clock (performance.now): time reaches the core as ticks"],
  [/\bMath\s*\.\s*random\b/, "Math.random: use the injected seeded Prng"],
  [/\b(setTimeout|setInterval|setImmediate|queueMicrotask)\b/, "timers: the runtime calls tick()"],
  [/\bawait\b|\basync\b/, "async code: the core is a synchronous state machine"],
  [/\bprocess\s*\./, "process: the core knows nothing of its host"],
];

export interface Violation {
  file: string;
  message: string;
}

function listSourceFiles(folder: string): string[] {
  const files: string[] = [];
  for (const name of readdirSync(folder)) {
    const path = join(folder, name);
    if (statSync(path).isDirectory()) files.push(...listSourceFiles(path));
    else if (name.endsWith(".ts")) files.push(path);
  }
  return files;
}

/** Strips comments and string/template contents so that words inside them do not count. */
function codeOnly(source: string): string {
  return source
    .replace(/\/\*[\s\S]*?\*\//g, " ")
    .replace(/(^|[^:\\])\/\/.*$/gm, "$1")
    .replace(/`(?:\\.|[^`\\])*`/g, "``")
    .replace(/"(?:\\.|[^"\\\n])*"/g, '""')
    .replace(/'(?:\\.|[^'\\\n])*'/g, "''");
}

function importSpecifiers(source: string): string[] {
  const specifiers: string[] = [];
  const withoutComments = source.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/(^|[^:\\])\/\/.*$/gm, "$1");
  const patterns = [
    /\b(?:import|export)\s[^;"']*?\bfrom\s*["']([^"']+)["']/g,
    /\bimport\s*["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const pattern of patterns) {
    for (const match of withoutComments.matchAll(pattern)) {
      if (match[1] !== undefined) specifiers.push(match[1]);
    }
  }
  return specifiers;
}

/** The top-level module of a path inside src/: its first folder, or the root file's name. */
function moduleOf(srcRoot: string, path: string): string {
  const parts = relative(srcRoot, path).split(sep);
  return parts[0] ?? "";
}

/** Checks every .ts file under `srcRoot` and returns the violations (empty when clean). */
export function checkDependencyRules(srcRoot: string): Violation[] {
  const violations: Violation[] = [];
  for (const file of listSourceFiles(srcRoot)) {
    const shown = relative(dirname(srcRoot), file);
    const from = moduleOf(srcRoot, file);
    const allowed = allowedImports[from];
    if (allowed === undefined) {
      violations.push({
        file: shown,
        message: `module "${from}" has no dependency rule; add it to allowedImports in test/architecture/dependency-rules.ts and docs/ARCHITECTURE.md`,
      });
      continue;
    }
    const source = readFileSync(file, "utf8");
    for (const specifier of importSpecifiers(source)) {
      if (!specifier.startsWith(".")) {
        if (pureModules.has(from)) {
          violations.push({ file: shown, message: `${from}/ must stay pure but imports "${specifier}"` });
        }
        continue;
      }
      const target = resolve(dirname(file), specifier);
      const to = moduleOf(srcRoot, target);
      if (to.startsWith("..")) {
        violations.push({ file: shown, message: `imports "${specifier}" from outside src/` });
        continue;
      }
      if (to === from) continue;
      if (concreteModules.has(to) && from !== compositionRoot) {
        violations.push({
          file: shown,
          message: `imports the concrete ${to}/ module ("${specifier}"); only src/${compositionRoot} picks adapters — depend on a port in src/ports instead`,
        });
        continue;
      }
      if (!allowed.includes("*") && !allowed.includes(to)) {
        violations.push({
          file: shown,
          message: `${from}/ may import only [${allowed.join(", ")}] but imports ${to} ("${specifier}")`,
        });
      }
    }
    if (from === "raft") {
      const code = codeOnly(source);
      for (const [pattern, what] of forbiddenInRaft) {
        if (pattern.test(code)) violations.push({ file: shown, message: `the consensus core uses ${what}` });
      }
    }
  }
  return violations;
}

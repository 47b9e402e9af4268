import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { checkDependencyRules } from "./dependency-rules.ts";

const srcRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "src");

describe("dependency direction", () => {
  it("holds for the whole of src/", () => {
    const violations = checkDependencyRules(srcRoot);
    assert.deepEqual(
      violations.map((v) => `${v.file}: ${v.message}`),
      [],
    );
  });

  describe("catches violations in a tree made to break them", () => {
    const root = mkdtempSync(join(tmpdir(), "conclave-arch-"));
    after(() => rmSync(root, { recursive: true, force: true }));
    const write = (path: string, text: string): void => {
      const full = join(root, "src", path);
      mkdirSync(dirname(full), { recursive: true });
      writeFileSync(full, text);
    };
    write("lib/ok.ts", "export const x = 1;\n");
    write("raft/uses-node.ts", 'import { readFileSync } from "node:fs";\nexport const y = readFileSync;\n');
    write("raft/uses-runtime.ts", 'import { x } from "../runtime/loop.ts";\nexport const z = x;\n');
    write("raft/uses-clock.ts", "export const now = () => Date.now();\n");
    write("raft/uses-random.ts", "export const r = () => Math.random();\n");
    write(
      "raft/mentions-in-comment.ts",
      "// Date.now() and Math.random() are not used here\nexport const c = 1;\n",
    );
    write("runtime/loop.ts", 'export { store } from "../adapters/file-store.ts";\nexport const x = 2;\n');
    write("adapters/file-store.ts", "export const store = 1;\n");
    write("conclave.ts", 'import { store } from "./adapters/file-store.ts";\nexport const s = store;\n');
    write("mystery/thing.ts", "export const m = 1;\n");
    const found = checkDependencyRules(join(root, "src")).map((v) => `${v.file}: ${v.message}`);

    const expectOne = (file: string, fragment: string): void => {
      const hits = found.filter((line) => line.startsWith(`src/${file}:`) && line.includes(fragment));
      assert.equal(
        hits.length,
        1,
        `expected a violation in ${file} mentioning "${fragment}", got:\n${found.join("\n")}`,
      );
    };

    it("a node: import in the consensus core", () => expectOne("raft/uses-node.ts", '"node:fs"'));
    it("an import against the direction", () => expectOne("raft/uses-runtime.ts", "may import only [lib]"));
    it("the wall clock in the core", () => expectOne("raft/uses-clock.ts", "wall clock"));
    it("Math.random in the core", () => expectOne("raft/uses-random.ts", "Math.random"));
    it("a concrete adapter picked outside the composition root", () =>
      expectOne("runtime/loop.ts", "only src/conclave.ts picks adapters"));
    it("a module without a rule", () => expectOne("mystery/thing.ts", "has no dependency rule"));
    it("and nothing in files that follow the rules", () => {
      for (const clean of [
        "lib/ok.ts",
        "raft/mentions-in-comment.ts",
        "conclave.ts",
        "adapters/file-store.ts",
      ]) {
        assert.deepEqual(
          found.filter((line) => line.startsWith(`src/${clean}:`)),
          [],
        );
      }
    });
  });
});

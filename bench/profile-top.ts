/**
 * `node bench/profile-top.ts [--top N] FILE.cpuprofile…`: the frames with the most self time and
 * the files with the most inclusive time in V8 CPU profiles, summed over the files given (the
 * servers of one run), as markdown (bench/compare/cpu-profile.ts).
 */
import { readCpuProfile, renderProfileMarkdown, summarizeCpuProfiles } from "./compare/cpu-profile.ts";

const usage = "usage: node bench/profile-top.ts [--top N] FILE.cpuprofile… (written by node --cpu-prof)";
const args = process.argv.slice(2);
let top = 20;
const topAt = args.indexOf("--top");
if (topAt >= 0) {
  top = Number(args[topAt + 1]);
  if (!Number.isInteger(top) || top < 1 || top > 1000) {
    console.error(`--top takes a whole number from 1 to 1000, got ${args[topAt + 1] ?? "nothing"}\n${usage}`);
    process.exit(2);
  }
  args.splice(topAt, 2);
}
if (args.length === 0) {
  console.error(usage);
  process.exit(2);
}
try {
  console.log(renderProfileMarkdown(summarizeCpuProfiles(args.map(readCpuProfile)), top));
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
}

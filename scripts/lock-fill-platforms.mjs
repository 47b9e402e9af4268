#!/usr/bin/env node
// Keeps `npm ci` working with a registry that serves only this platform's binaries.
//
// Packages such as Biome ship one optional package per platform. The registry reachable here
// serves only the linux-x64 ones, so `npm install` leaves the others out of package-lock.json,
// and `npm ci` then refuses the lock as "out of sync". This adds the missing optional entries
// (name and version only); npm ci skips them as optional. Run it after every dependency change:
//   npm install <pkg> && node scripts/lock-fill-platforms.mjs
import { readFileSync, writeFileSync } from "node:fs";

const lockPath = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(lockPath, "utf8"));
const packages = lock.packages;
let added = 0;
for (const info of Object.values(packages)) {
  for (const [name, version] of Object.entries(info.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    if (!packages[key]) {
      packages[key] = { version, optional: true };
      added++;
    }
  }
}
const sorted = Object.fromEntries(
  Object.entries(packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a < b ? -1 : 1)),
);
lock.packages = sorted;
writeFileSync(lockPath, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`lock-fill-platforms: added ${added} optional platform entries`);

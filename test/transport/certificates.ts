/** Test certificates made with the `openssl` command line (Debian's package, installed by .ci/run). */
import { spawnSync } from "node:child_process";

export function opensslAvailable(): boolean {
  return spawnSync("openssl", ["version"]).status === 0;
}

function openssl(directory: string, ...args: string[]): void {
  const result = spawnSync("openssl", args, { cwd: directory, encoding: "utf8" });
  if (result.status !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${result.stderr}`);
}

const ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/** A self-signed CA in `<directory>/<ca>.key` and `<ca>.crt`. */
export function makeCa(directory: string, ca: string): void {
  openssl(
    directory,
    "req",
    "-x509",
    ...ecKey,
    "-keyout",
    `${ca}.key`,
    "-out",
    `${ca}.crt`,
    "-subj",
    `/CN=${ca}`,
    "-days",
    "2",
  );
}

/** A certificate with CN = `commonName` signed by `ca`, in `<directory>/<file>.key` and `<file>.crt`. */
export function makeLeaf(directory: string, ca: string, file: string, commonName: string): void {
  openssl(
    directory,
    "req",
    ...ecKey,
    "-keyout",
    `${file}.key`,
    "-out",
    `${file}.csr`,
    "-subj",
    `/CN=${commonName}`,
  );
  openssl(
    directory,
    "x509",
    "-req",
    "-in",
    `${file}.csr`,
    "-CA",
    `${ca}.crt`,
    "-CAkey",
    `${ca}.key`,
    "-CAcreateserial",
    "-out",
    `${file}.crt`,
    "-days",
    "2",
  );
}

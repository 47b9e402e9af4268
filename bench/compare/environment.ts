/** The machine and versions a result was measured with (recorded with every result). */
import { readFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, release, totalmem } from "node:os";
import { conclaveVersion } from "./conclave-cluster.ts";
import { etcdVersion } from "./etcd-cluster.ts";

export interface Environment {
  readonly nproc: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly os: string;
  readonly loadAverage: number[];
  readonly node: string;
  readonly etcd: string | null;
  readonly conclave: string;
}

function osName(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync("/etc/os-release", "utf8"))?.[1] ?? "unknown";
  } catch {
    return "unknown";
  }
}

export function describeEnvironment(): Environment {
  return {
    nproc: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    os: osName(),
    loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
    node: process.version,
    etcd: etcdVersion(),
    conclave: conclaveVersion(),
  };
}

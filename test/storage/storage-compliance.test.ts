import { raftStorageCompliance, snapshotStoreCompliance } from "./storage-compliance.ts";
import { fileHarness, memoryHarness } from "./storage-harnesses.ts";

// Small segments so that rolling, whole-segment compaction and cross-segment truncation happen.
for (const harness of [fileHarness({ segmentBytesMax: 512 }), fileHarness(), memoryHarness]) {
  raftStorageCompliance(harness);
  snapshotStoreCompliance(harness);
}

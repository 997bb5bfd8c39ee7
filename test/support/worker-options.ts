/** Options of an in-process Worker for the integration tests: defaults with no faults, no mover, confirmed acks. */
import { DEFAULT_BACKOFF } from "../../src/core/pipeline/backoff.js";
import type { Names } from "../../src/core/nats/names.js";
import type { WorkerOptions } from "../../src/core/pipeline/worker.js";

export function testWorkerOptions(names: Names, extra: Partial<WorkerOptions> = {}): WorkerOptions {
  return {
    names,
    workerId: "w-test",
    concurrency: 4,
    backoff: DEFAULT_BACKOFF,
    confirmAck: true,
    unsafe: false,
    mover: false,
    drainTimeoutMs: 30_000,
    faults: { crashAfterCommitRate: 0, dropAckRate: 0 },
    ...extra,
  };
}

/**
 * The channel between a supervisor (supervisor.ts) and one of its `orderq work` children: how a
 * child knows it is one, and what it reports. Kept apart from the worker so that every command can
 * report a failure without loading the pipeline.
 */
import type { WorkerStats } from "../pipeline/worker.js";

/** Set in every child's environment: the child runs one worker and reports to us (worker-process.ts). */
export const SUPERVISED_ENV = "ORDERQ_SUPERVISED";

/** What a child sends: its stats every 250 ms, and once, why it stops when it fails. */
export type ChildReport =
  | {
      type: "stats";
      stats: WorkerStats;
      /** prom-client `getMetricsAsJSON()` of the child, when metrics are on. */
      metrics?: object[];
    }
  | {
      type: "failed";
      /** The one line the child printed, and its exit code (2: bad input, 3: environment). */
      message: string;
      exitCode: number;
    };

/** Whether this process is a supervisor's child (it has the IPC channel the supervisor opened). */
export function isSupervisedChild(): boolean {
  return process.env[SUPERVISED_ENV] === "1" && process.send !== undefined;
}

/** After the last report: close the IPC channel, which would keep a child alive. */
export function leaveSupervisor(): void {
  process.disconnect?.();
}

/**
 * A child about to exit with a failure tells its supervisor the line and the exit code; resolves once
 * the message is sent (the process exits right after), at once when this is not a supervised child.
 */
export function reportFailureToSupervisor(message: string, exitCode: number): Promise<void> {
  if (!isSupervisedChild() || !process.connected) return Promise.resolve();
  const report: ChildReport = { type: "failed", message, exitCode };
  return new Promise((resolve) => process.send!(report, undefined, undefined, () => resolve()));
}

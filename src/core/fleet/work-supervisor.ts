/**
 * `orderq work -p N` / `--autoscale`: worker processes under a supervisor that replaces any that die,
 * optionally autoscaled, plus one quarantine-lane process (see pipeline/quarantine.ts). Each child is started with workArgs from the same options, less what only the
 * supervisor acts on; credentials reach the children in NATS_* variables, never in their arguments.
 */
import type { JetStreamManager } from "@nats-io/jetstream";
import { Autoscaler, type ScaleEvent } from "./autoscaler.js";
import { mergeMetrics, pipelineRegistry } from "./metrics.js";
import { backlog } from "./quiescence.js";
import { Supervisor } from "./supervisor.js";
import { workArgs, type ResolvedWorkOptions, type WorkOptions } from "./work-args.js";
import type { WorkPool } from "./work-pool.js";
import { METRICS_ENV, sumStats } from "./worker-process.js";

export interface WorkSupervisorOptions {
  /** The CLI's entry point (bin/run.js), which the children run. */
  script: string;
  /** The NATS_* variables with the credentials (credentialEnv). */
  credentials: NodeJS.ProcessEnv;
  onScale?: (event: ScaleEvent) => void;
  log: (line: string) => void;
}

const RESTART_DELAY_MS = 200;

export function startWorkSupervisor(jsm: JetStreamManager, o: ResolvedWorkOptions, s: WorkSupervisorOptions): WorkPool {
  const names = o.settings.names;
  const metricsOn = o.metricsPort !== undefined;
  const child: WorkOptions = { ...o, processes: undefined, autoscale: undefined, exitWhenIdleMs: undefined, metricsPort: undefined };
  const supervisor = new Supervisor(
    {
      script: s.script,
      args: (workerId) => workArgs({ ...child, workerId }),
      env: { ...s.credentials, ...(metricsOn ? { [METRICS_ENV]: "1" } : {}) },
      restartDelayMs: RESTART_DELAY_MS,
    },
    {
      onExit: ({ id, code, signal, replaced }) => {
        if (replaced) s.log(`worker ${id} exited (${signal ?? code}); starting a replacement`);
      },
    },
  );
  const initial = o.autoscale ? o.autoscale.min : o.processes;
  for (let i = 0; i < initial; i++) supervisor.spawn();
  // The quarantine lane: one process of its own, apart from the ones the autoscaler adds and retires.
  const lane = new Supervisor(
    {
      script: s.script,
      args: (workerId) => workArgs({ ...child, workerId, lane: "quarantine" }),
      env: { ...s.credentials, ...(metricsOn ? { [METRICS_ENV]: "1" } : {}) },
      restartDelayMs: RESTART_DELAY_MS,
    },
    {
      onExit: ({ id, code, signal, replaced }) => {
        if (replaced) s.log(`quarantine lane ${id} exited (${signal ?? code}); starting a replacement`);
      },
    },
  );
  lane.spawn("q1");
  let autoscaler: Autoscaler | undefined;
  if (o.autoscale) {
    autoscaler = new Autoscaler(supervisor, jsm, names, { ...o.autoscale, maxStepUp: Math.max(1, Math.ceil(o.autoscale.max / 4)) }, (event) =>
      s.onScale?.(event),
    );
    autoscaler.start();
  }
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const lagRegistry = pipelineRegistry(async () => {
    const b = await backlog(jsm, names);
    return { workers: supervisor.active, lag: b.pending + b.ackPending };
  });
  return {
    stats: () => sumStats([supervisor.stats(), lane.stats()]),
    workers: () => supervisor.active,
    metrics: async () => {
      const merged = mergeMetrics([...supervisor.metricsSnapshots(), ...lane.metricsSnapshots()]);
      return { contentType: merged.contentType, body: (await merged.metrics()) + (await lagRegistry.metrics()) };
    },
    stop: () => {
      autoscaler?.stop();
      void Promise.all([supervisor.stop(), lane.stop()]).then(resolveDone);
    },
    done,
  };
}

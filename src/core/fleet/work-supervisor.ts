/**
 * `orderq work -p N` / `--autoscale`: worker processes under a supervisor that replaces any that die,
 * optionally autoscaled, plus one quarantine-lane process (see pipeline/quarantine.ts). Each child is
 * started with workArgs from the same options, less what only the supervisor acts on (so a child never
 * supervises, whatever the supervisor's own command line said); credentials reach the children in
 * NATS_* variables, never in their arguments. A child that exits 2 (it refused its input) stops the
 * whole pool: `done` rejects with an InputError carrying its line.
 */
import type { JetStreamManager } from "@nats-io/jetstream";
import { Autoscaler, type ScaleEvent } from "./autoscaler.js";
import { mergeMetrics, pipelineRegistry } from "./metrics.js";
import { backlog } from "./quiescence.js";
import { InputError } from "../base/errors.js";
import { BAD_INPUT_EXIT } from "./supervisor.js";
import { workArgs, type ResolvedWorkOptions, type WorkOptions } from "./work-args.js";
import type { WorkPool } from "./work-pool.js";
import { QUARANTINE_LANE_ID, WorkerLanes } from "./worker-lanes.js";
import { METRICS_ENV } from "./worker-process.js";

export interface WorkSupervisorOptions {
  /** The CLI's entry point (bin/run.js), which the children run. */
  script: string;
  /** The NATS_* variables with the credentials (credentialEnv). */
  credentials: NodeJS.ProcessEnv;
  onScale?: (event: ScaleEvent) => void;
  log: (line: string) => void;
}

const RESTART_DELAY_MS = 200;

/**
 * Whether `orderq work` with these options runs a supervisor (true) or one worker in its own process.
 * A supervisor's child never supervises, whatever its command line says: a supervisor that passed its
 * own --processes on would multiply the processes at every level. A quarantine-lane process
 * (`--lane quarantine`) is one process with one order in flight, whatever --processes says.
 */
export function runsSupervisor(o: Pick<ResolvedWorkOptions, "processes" | "autoscale" | "lane">, supervisedChild: boolean): boolean {
  return !supervisedChild && o.lane === undefined && (o.processes > 1 || o.autoscale !== undefined);
}

/**
 * The command line of the supervisor's worker `workerId`, built from the parsed options (never from
 * the supervisor's own argv): less what only the supervisor acts on (processes, autoscaling, the idle
 * exit, the metrics port), so the child runs one worker.
 */
export function childWorkArgs(o: ResolvedWorkOptions, workerId: string): string[] {
  const child: WorkOptions = { ...o, processes: undefined, autoscale: undefined, exitWhenIdleMs: undefined, metricsPort: undefined, workerId };
  return workArgs(child);
}

export function startWorkSupervisor(jsm: JetStreamManager, o: ResolvedWorkOptions, s: WorkSupervisorOptions): WorkPool {
  const names = o.settings.names;
  const metricsOn = o.metricsPort !== undefined;
  // The children's lines (they name their worker already) go through the supervisor's logger, which
  // prints them above its status line on a terminal instead of in the middle of it.
  const stderrLine = (_workerId: string, line: string) => s.log(line);
  let resolveDone!: () => void;
  let rejectDone!: (err: Error) => void;
  const done = new Promise<void>((resolve, reject) => ((resolveDone = resolve), (rejectDone = reject)));
  let stopped = false;
  let refused: InputError | undefined;
  let autoscaler: Autoscaler | undefined;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    autoscaler?.stop();
    void lanes.stop().then(() => (refused ? rejectDone(refused) : resolveDone()));
  };
  const lanes = new WorkerLanes(
    {
      script: s.script,
      args: (workerId, lane) => childWorkArgs({ ...o, lane }, workerId),
      env: { ...s.credentials, ...(metricsOn ? { [METRICS_ENV]: "1" } : {}) },
      restartDelayMs: RESTART_DELAY_MS,
      stderrLine,
    },
    {
      onExit: ({ id, code, signal, replaced, message }) => {
        const who = id === QUARANTINE_LANE_ID ? `quarantine lane ${id}` : `worker ${id}`;
        if (replaced) s.log(`${who} exited (${signal ?? code}); starting a replacement`);
        else if (code === BAD_INPUT_EXIT && !stopped) {
          refused ??= new InputError(`${who} refused its input (exit 2): ${message ?? "no reason given"}`);
          stop();
        }
      },
    },
  );
  const supervisor = lanes.main;
  lanes.start(o.autoscale ? o.autoscale.min : o.processes);
  if (o.autoscale) {
    autoscaler = new Autoscaler(supervisor, jsm, names, { ...o.autoscale, maxStepUp: Math.max(1, Math.ceil(o.autoscale.max / 4)) }, (event) =>
      s.onScale?.(event),
    );
    autoscaler.start();
  }

  const lagRegistry = pipelineRegistry(async () => {
    const b = await backlog(jsm, names);
    return { workers: supervisor.active, lag: b.pending + b.ackPending };
  });
  return {
    stats: () => lanes.stats(),
    workers: () => supervisor.active,
    metrics: async () => {
      const merged = mergeMetrics(lanes.metricsSnapshots());
      return { contentType: merged.contentType, body: (await merged.metrics()) + (await lagRegistry.metrics()) };
    },
    stop,
    done,
  };
}

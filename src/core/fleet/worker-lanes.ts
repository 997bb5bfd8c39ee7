/**
 * A pool's worker processes in their two lanes: the main lane's workers under one Supervisor, and the
 * quarantine lane's process (`orderq work --lane quarantine`, id q1; see pipeline/quarantine.ts) under a
 * Supervisor of its own, so an autoscaler acting on the main lane never counts or retires it. Every
 * pool of `orderq work` processes (`orderq work -p`, chaos runs, the bench) starts its lanes here.
 */
import { Supervisor, type SupervisorEvents, type SupervisorOptions } from "./supervisor.js";
import { sumStats } from "./worker-process.js";
import type { WorkerStats } from "../pipeline/worker.js";

/** Id of the quarantine lane's process (the main lane's are w1, w2, …). */
export const QUARANTINE_LANE_ID = "q1";

export interface WorkerLanesOptions extends Omit<SupervisorOptions, "args"> {
  /**
   * The arguments of worker `workerId` (after the CLI's entry point): `lane` is "quarantine" for the
   * quarantine lane's process, undefined for a main-lane worker. Called once per start and restart.
   */
  args: (workerId: string, lane?: "quarantine") => string[];
}

export class WorkerLanes {
  /** The main lane: the supervisor an autoscaler adds workers to and retires them from. */
  readonly main: Supervisor;
  /** The quarantine lane's one process. */
  readonly quarantine: Supervisor;

  /** `events` hear both lanes; the quarantine lane's process has the id QUARANTINE_LANE_ID. */
  constructor(options: WorkerLanesOptions, events: SupervisorEvents = {}) {
    const { args, ...common } = options;
    this.main = new Supervisor({ ...common, args: (workerId) => args(workerId) }, events);
    this.quarantine = new Supervisor({ ...common, args: (workerId) => args(workerId, "quarantine") }, events);
  }

  /** Starts `processes` main-lane workers, then the quarantine lane's process. */
  start(processes: number): void {
    for (let i = 0; i < processes; i++) this.main.spawn();
    this.quarantine.spawn(QUARANTINE_LANE_ID);
  }

  /** Ids of the workers with a live process, the quarantine lane's included. */
  ids(): string[] {
    return [...this.main.ids(), ...this.quarantine.ids()];
  }

  /** The live process of worker `id` (either lane) and its exit; undefined when it has none. */
  process(id: string): ReturnType<Supervisor["process"]> {
    return this.main.process(id) ?? this.quarantine.process(id);
  }

  /** Both lanes' stats summed (the gone processes' last reports included). */
  stats(): WorkerStats {
    return sumStats([this.main.stats(), this.quarantine.stats()]);
  }

  /** Every process's last metrics snapshot, both lanes, the gone ones included. */
  metricsSnapshots(): object[][] {
    return [...this.main.metricsSnapshots(), ...this.quarantine.metricsSnapshots()];
  }

  /** Drains both lanes (SIGTERM; SIGKILL after `graceMs`, default the Supervisor's 30 s). */
  async stop(graceMs?: number): Promise<void> {
    await Promise.all([this.main.stop(graceMs), this.quarantine.stop(graceMs)]);
  }
}
